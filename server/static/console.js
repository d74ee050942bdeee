// The review console's only script: press-and-hold reveal (each reveal audited by the
// server, which hands out a single-use ticket for the unveiled picture) and shortcuts.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const frame = document.getElementById("media");
  const image = document.getElementById("item-image");
  let holding = false;

  async function reveal() {
    if (!frame || !image || holding) return;
    holding = true;
    const response = await fetch(`/item/${frame.dataset.item}/reveal`, {
      method: "POST",
      headers: { "X-CSRF-Token": csrf },
      credentials: "same-origin",
    });
    if (!response.ok || !holding) { holding = false; return; }
    const answer = await response.json();
    const counter = document.getElementById("reveal-count");
    if (counter) counter.textContent = String(answer.reveals);
    image.src = answer.src;
    image.classList.remove("veiled");
    image.classList.add("revealed");
    image.alt = "matched media, revealed";
  }

  function veil() {
    if (!frame || !image) return;
    holding = false;
    if (image.classList.contains("revealed")) {
      image.classList.remove("revealed");
      image.classList.add("veiled");
      image.src = frame.dataset.veiledSrc;
      image.alt = "matched media, veiled";
    }
  }

  const toggle = frame && frame.dataset.reveal === "toggle";
  if (frame && toggle) {
    frame.addEventListener("click", (event) => {
      event.preventDefault();
      if (image.classList.contains("revealed")) veil(); else reveal();
    });
  } else if (frame) {
    frame.addEventListener("pointerdown", (event) => { event.preventDefault(); reveal(); });
    for (const name of ["pointerup", "pointerleave", "pointercancel"]) frame.addEventListener(name, veil);
    frame.addEventListener("keydown", (event) => { if (event.key === " " && !event.repeat) { event.preventDefault(); reveal(); } });
    frame.addEventListener("keyup", (event) => { if (event.key === " ") veil(); });
  }
  if (frame) {
    window.addEventListener("blur", veil);
    frame.addEventListener("contextmenu", (event) => event.preventDefault());
  }

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "c") document.getElementById("confirm-form")?.requestSubmit();
    else if (event.key === "s") document.getElementById("skip-form")?.requestSubmit();
    else if (event.key === "r") { event.preventDefault(); document.getElementById("reject-reason")?.focus(); }
  });
})();
