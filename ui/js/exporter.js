// Asks the server for the conversation as Markdown (page.js sends "export:counter") and saves what comes
// back ({"request", "markdown"}) as a file, made in the browser: nothing is stored on the server.
window.addEventListener("rag-export", (event) => {
  props.value = event.detail;
  trigger("download");
});
watch("value", () => {
  let answer = null;
  try {
    answer = JSON.parse(props.value || "");
  } catch {
    return; // the request itself, before the answer
  }
  if (!answer || typeof answer.markdown !== "string") return;
  const stamp = new Date().toISOString().slice(0, 16).replace(/[-:T]/g, "");
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([answer.markdown], { type: "text/markdown;charset=utf-8" }));
  link.download = `gespraech-${stamp}.md`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
});
