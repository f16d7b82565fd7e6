// The conversation: each answer arrives as one new turn (props.value) and is added to the turns already
// on the page, so no turn resends the ones before it; the new turn is scrolled to the top of the view.
const turns = element.querySelector(".rag-turns");

const show = (turn) => {
  document.body.classList.add("rag-has-turns");
  requestAnimationFrame(() => turn.scrollIntoView({ block: "start" }));
};

// The question shows at once, while the answer is looked for.
window.ragPending = (question) => {
  const text = (question || "").trim();
  if (!text) return;
  const turn = document.createElement("article");
  turn.className = "rag-turn rag-pending";
  const heading = document.createElement("h2");
  heading.className = "rag-question-text";
  heading.textContent = text;
  const waiting = document.createElement("p");
  waiting.className = "rag-waiting";
  waiting.textContent = "Suche in den Artikeln … · Searching the articles …";
  turn.append(heading, waiting);
  turns.append(turn);
  show(turn);
};

watch("value", () => {
  if (!props.value) return;
  const template = document.createElement("template");
  template.innerHTML = props.value;
  const turn = template.content.querySelector(".rag-turn");
  if (!turn) return;
  const pending = turns.querySelector(".rag-pending");
  if (pending) pending.replaceWith(turn);
  else turns.append(turn);
  show(turn);
});
