// Select-all boxes: a checkbox with data-select-all="NAME" checks or unchecks every enabled
// checkbox named NAME in its form, and shows whether all, some or none of them are checked.
// Without this script the box still works: the server reads it as "every row of this page".
"use strict";

function selectAllBoxes(form, name) {
  return Array.from(form.querySelectorAll(`input[type=checkbox][name="${name}"]:not(:disabled)`));
}

function refreshSelectAll(form) {
  for (const all of form.querySelectorAll("input[data-select-all]")) {
    const boxes = selectAllBoxes(form, all.dataset.selectAll);
    const checked = boxes.filter((b) => b.checked).length;
    all.checked = boxes.length > 0 && checked === boxes.length;
    all.indeterminate = checked > 0 && checked < boxes.length;
  }
}

document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || box.type !== "checkbox" || !box.form) return;
  if (box.dataset.selectAll) {
    for (const b of selectAllBoxes(box.form, box.dataset.selectAll)) b.checked = box.checked;
    box.indeterminate = false;
  } else {
    refreshSelectAll(box.form);
  }
});

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.forms) refreshSelectAll(form);
});
