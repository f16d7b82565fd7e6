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

  // Managing articles: the chosen file is read here and sent as text (articles.js), a deletion asks once
  // more on the button itself, and the conversation is exported as Markdown (exporter.js).
  const manageStatus = (text) => {
    const box = document.querySelector("#rag-manage-status .rag-manage-msg");
    if (box) box.textContent = text;
  };
  const sendUpload = (form) => {
    const input = form && form.querySelector("input[type=file]");
    const file = input && input.files && input.files[0];
    if (!file) {
      manageStatus("Bitte zuerst eine Datei wählen. · Choose a file first.");
      return;
    }
    const max = Number(form.dataset.maxBytes || 0);
    if (max && file.size > max) {
      manageStatus(`Die Datei ist größer als ${max} Bytes. · The file is larger than ${max} bytes.`);
      return;
    }
    const reader = new FileReader();
    reader.onload = () => {
      const data = String(reader.result).split(",", 2)[1] || "";
      manageStatus("Wird hochgeladen … · Uploading …");
      window.dispatchEvent(new CustomEvent("rag-upload", { detail: JSON.stringify({ name: file.name, data }) }));
      input.value = "";
    };
    reader.readAsDataURL(file);
  };
  const askToDelete = (button) => {
    if (button.dataset.armed) {
      manageStatus("Wird gelöscht … · Deleting …");
      window.dispatchEvent(new CustomEvent("rag-delete", { detail: button.dataset.delete }));
      return;
    }
    const [text, name] = [button.textContent, button.getAttribute("aria-label")];
    button.dataset.armed = "1";
    button.textContent = "Wirklich löschen?";
    button.setAttribute("aria-label", `Wirklich löschen? ${button.dataset.title || ""}`);
    setTimeout(() => {
      delete button.dataset.armed;
      button.textContent = text;
      button.setAttribute("aria-label", name);
    }, 4000);
  };

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const upload = target && target.closest("[data-upload]");
    if (upload) {
      sendUpload(upload.closest(".rag-upload"));
      return;
    }
    const remove = target && target.closest("[data-delete]");
    if (remove) {
      askToDelete(remove);
      return;
    }
    if (target && target.closest("[data-export]")) {
      requests += 1;
      window.dispatchEvent(new CustomEvent("rag-export", { detail: `export:${requests}` }));
      return;
    }
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
