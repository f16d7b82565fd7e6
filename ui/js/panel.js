// The article panel: shown when an article arrives, scrolled to its marked sentence, focus on its title.
watch("value", () => {
  const panel = element.querySelector(".rag-panel");
  if (!panel) return;
  if (window.ragPanelOpened) window.ragPanelOpened();
  requestAnimationFrame(() => {
    const mark = panel.querySelector("mark");
    if (mark) panel.scrollTop = Math.max(0, mark.offsetTop - panel.clientHeight / 3);
    const title = panel.querySelector("h2");
    if (title) title.focus({ preventScroll: true });
  });
});
