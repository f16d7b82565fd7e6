// Sends an article management request of the page (page.js) to the server: an upload as
// {"name", "data": base64} or a deletion as the article's id. The API key goes with it from its own box.
window.addEventListener("rag-upload", (event) => {
  props.value = event.detail;
  trigger("upload");
});
window.addEventListener("rag-delete", (event) => {
  props.value = event.detail;
  trigger("delete");
});
