// The upload page without reloads: file picker, drag-and-drop and a drawing pad, all posting
// to /prediction and showing the answer in place; with "compare versions" ticked, the digit goes to
// every loaded version at once and their answers are shown side by side. Without JavaScript the
// form posts normally.
"use strict";

const form = document.getElementById("upload-form");
const input = document.getElementById("image");
const dropZone = document.getElementById("drop-zone");
const errorBox = document.getElementById("error");
const result = document.getElementById("result");
const pad = document.getElementById("pad");
const stroke = document.getElementById("stroke");
const maxBytes = Number(form.dataset.maxBytes);
const compare = document.getElementById("compare"); // absent when only one version is loaded
const comparison = document.getElementById("comparison");
let lastSent = null;

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
  result.hidden = true;
  comparison.hidden = true;
}

function showAnswer(answer, sent) {
  errorBox.hidden = true;
  comparison.hidden = true;
  document.getElementById("prediction").textContent = answer.prediction;
  document.getElementById("confidence").textContent = (answer.confidence * 100).toFixed(1) + " %";
  document.getElementById("model").textContent = answer.model;
  document.getElementById("no-digit").hidden = answer.digit_found;
  showSent(sent, answer.box);
  document.getElementById("model-input").src = answer.model_input;
  for (const row of document.querySelectorAll("#probabilities tr[data-digit]")) {
    const p = answer.probabilities[Number(row.dataset.digit)];
    row.querySelector(".bar").value = p;
    row.querySelector(".value").textContent = (p * 100).toFixed(2) + " %";
    row.classList.toggle("best", Number(row.dataset.digit) === answer.prediction);
  }
  result.hidden = false;
}

// One POST to /prediction; the answer, or an Error with the server's message.
async function post(blob, filename, query) {
  const body = new FormData();
  body.append("image", blob, filename);
  let response;
  try {
    response = await fetch(form.action + query, { method: "POST", body, headers: { Accept: "application/json" } });
  } catch (failure) {
    throw new Error("The server could not be reached: " + failure.message);
  }
  const answer = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
  if (!response.ok) throw new Error(answer.error);
  return answer;
}

// The picture that was sent, fitted into its frame, with the box where the digit was found.
function showSent(url, box) {
  const image = document.getElementById("sent");
  const outline = document.getElementById("digit-box");
  const side = Number(image.dataset.side);
  outline.hidden = true;
  image.addEventListener("load", () => {
    const scale = Math.min(side / image.naturalWidth, side / image.naturalHeight);
    image.width = Math.round(image.naturalWidth * scale);
    image.height = Math.round(image.naturalHeight * scale);
    if (!box) return;
    outline.style.left = (box.x * scale).toFixed(1) + "px";
    outline.style.top = (box.y * scale).toFixed(1) + "px";
    outline.style.width = (box.width * scale).toFixed(1) + "px";
    outline.style.height = (box.height * scale).toFixed(1) + "px";
    outline.hidden = false;
  }, { once: true });
  image.src = url;
}

async function predict(blob, filename) {
  if (blob.size > maxBytes) {
    showError(`The file is ${(blob.size / 1048576).toFixed(1)} MB; the limit is ${(maxBytes / 1048576).toFixed(1)} MB.`);
    return;
  }
  lastSent = [blob, filename];
  try {
    if (compare && compare.checked) {
      const versions = compare.dataset.versions.split(" ");
      showComparison(await Promise.all(versions.map((version) => post(blob, filename, "?version=" + version))));
    } else {
      showAnswer(await post(blob, filename, "?model_input=true"), URL.createObjectURL(blob));
    }
  } catch (failure) {
    showError(failure.message);
  }
}

function element(tag, properties = {}, children = []) {
  const made = Object.assign(document.createElement(tag), properties);
  made.append(...children);
  return made;
}

function probabilityTable(probabilities, best) {
  const rows = probabilities.map((p, digit) => {
    const bar = element("meter", { className: "bar", min: 0, max: 1, value: p });
    const row = element("tr", { className: digit === best ? "best" : "" }, [
      element("th", { scope: "row", textContent: digit }),
      element("td", {}, [bar]),
      element("td", { className: "value", textContent: (p * 100).toFixed(2) + " %" }),
    ]);
    row.dataset.digit = digit;
    return row;
  });
  return element("table", { className: "probabilities" }, [element("tbody", {}, rows)]);
}

// One card per version, in version order; a card whose digit differs from the most common answer is marked.
function showComparison(answers) {
  errorBox.hidden = true;
  result.hidden = true;
  const votes = {};
  for (const answer of answers) votes[answer.prediction] = (votes[answer.prediction] || 0) + 1;
  const common = Number(Object.keys(votes).reduce((a, b) => (votes[a] >= votes[b] ? a : b)));
  const cards = answers.map((answer) => {
    const card = element("article", { className: answer.prediction === common ? "" : "disagrees" }, [
      element("h3", {}, [element("code", { textContent: answer.model })]),
      element("div", { className: "answer" }, [
        element("p", { className: "digit", textContent: answer.prediction }),
        element("p", { textContent: "confidence " + (answer.confidence * 100).toFixed(1) + " %" }),
      ]),
      probabilityTable(answer.probabilities, answer.prediction),
    ]);
    card.dataset.model = answer.model;
    return card;
  });
  document.getElementById("comparison-cards").replaceChildren(...cards);
  comparison.hidden = false;
}

if (compare) {
  compare.addEventListener("change", () => {
    if (lastSent) predict(...lastSent);
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (input.files.length === 0) {
    showError("Choose a picture first.");
    return;
  }
  predict(input.files[0], input.files[0].name);
});

input.addEventListener("change", () => {
  if (input.files.length > 0) predict(input.files[0], input.files[0].name);
});

for (const type of ["dragenter", "dragover"]) {
  dropZone.addEventListener(type, (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
}
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  const file = event.dataTransfer.files[0];
  if (file) predict(file, file.name);
});

// The drawing pad: dark strokes on a transparent background, exactly what a canvas export is.
const context = pad.getContext("2d");
let drawing = false;
let drawn = false;

function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
}

pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  drawn = true;
  pad.setPointerCapture(event.pointerId);
  context.lineWidth = Number(stroke.value);
  context.lineCap = "round";
  context.lineJoin = "round";
  context.strokeStyle = "#111";
  context.beginPath();
  context.moveTo(...point(event));
  context.lineTo(...point(event));
  context.stroke();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  context.lineTo(...point(event));
  context.stroke();
});
function endStroke() {
  if (!drawing) return;
  drawing = false;
  predictDrawing();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function predictDrawing() {
  if (!drawn) {
    showError("Draw a digit first.");
    return;
  }
  pad.toBlob((blob) => predict(blob, "drawing.png"), "image/png");
}

document.getElementById("predict-drawing").addEventListener("click", predictDrawing);
document.getElementById("clear").addEventListener("click", () => {
  context.clearRect(0, 0, pad.width, pad.height);
  drawn = false;
  lastSent = null;
  result.hidden = true;
  comparison.hidden = true;
  errorBox.hidden = true;
});

for (const section of document.querySelectorAll(".needs-js")) section.hidden = false;
