() => {
  // The chat page's behaviour, once per page: [n] links and "Im Artikel zeigen" open the article panel,
  // copy buttons copy plain text, the skip link reaches the question box, Escape closes the panel.
  // Gradio draws its components one by one as their code and styles arrive; the page is shown once the
  // question box, the examples and the conversation are there and its size held for five frames, so
  // nothing moves under the reader's eyes (cumulative layout shift while loading was 0.89).
  const started = performance.now();
  let last = "";
  let still = 0;
  const reveal = () => {
    const drawn = ["#rag-question textarea", "#rag-examples button", ".rag-log", ".rag-header"].every((s) =>
      document.querySelector(s),
    );
    const main = document.getElementById("rag-main");
    const size = main ? `${main.offsetWidth}x${main.offsetHeight}` : "";
    still = drawn && size === last ? still + 1 : 0;
    last = size;
    if (still >= 5 || performance.now() - started > 5000) document.body.classList.add("rag-ready");
    else requestAnimationFrame(reveal);
  };
  reveal();

  let opener = null; // what opened the panel: focus goes back there when it closes
  let requests = 0; // makes every request new, so the same article opened twice still shows

  const question = () => document.querySelector("#rag-question textarea");
  const status = (text) => {
    const live = document.getElementById("rag-status");
    if (live) live.textContent = text;
  };

  const copyText = async (text) => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = document.createElement("textarea"); // no clipboard API outside a secure context
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
  };

  const closePanel = () => {
    if (!document.body.classList.contains("rag-panel-open")) return;
    document.body.classList.remove("rag-panel-open");
    if (opener && opener.isConnected) opener.focus();
  };
  window.ragPanelOpened = () => document.body.classList.add("rag-panel-open");

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const open = target && target.closest("[data-open]");
    if (open) {
      event.preventDefault();
      opener = open;
      requests += 1;
      window.dispatchEvent(new CustomEvent("rag-open", { detail: `${open.dataset.open}:${requests}` }));
      return;
    }
    const copy = target && target.closest("[data-copy]");
    if (copy) {
      copyText(copy.dataset.copy).then(() => {
        const label = copy.dataset.label || copy.textContent;
        copy.dataset.label = label;
        copy.textContent = copy.dataset.done || "✓";
        status(copy.dataset.done || "");
        setTimeout(() => { copy.textContent = label; }, 1800);
      });
      return;
    }
    if (target && target.closest("[data-close]")) {
      closePanel();
      return;
    }
    if (target && target.closest(".rag-skip") && question()) {
      event.preventDefault();
      question().focus();
    }
  });

  // Escape closes the article, and hides a source's preview until the pointer or the focus moves on.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    closePanel();
    document.body.classList.add("rag-no-tip");
  });
  const tipsBack = () => document.body.classList.remove("rag-no-tip");
  document.addEventListener("pointermove", tipsBack);
  document.addEventListener("focusin", tipsBack);

  // Copying a selection inside the chat copies its text, never the page's markup.
  document.addEventListener("copy", (event) => {
    const selection = document.getSelection();
    const inside = selection && selection.anchorNode && selection.anchorNode.parentElement;
    if (!inside || !inside.closest(".rag-log, .rag-panel") || !event.clipboardData) return;
    event.clipboardData.setData("text/plain", selection.toString());
    event.preventDefault();
  });
}
