// Asks the server for an article when the page wants one opened (page.js sends "turn:card:counter").
window.addEventListener("rag-open", (event) => {
  props.value = event.detail;
  trigger("open");
});
