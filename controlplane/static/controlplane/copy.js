// A "Copy" button (data-copy="<input id>") copies that input's value, and says so beside it. It is rendered hidden:
// without scripts the value stays selectable in its field, and no button does nothing.
for (const button of document.querySelectorAll("[data-copy]")) button.hidden = false;
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const id = button.dataset.copy;
  const field = document.getElementById(id);
  const said = document.querySelector(`[data-copied-for="${id}"]`);
  try {
    await navigator.clipboard.writeText(field.value);
    if (said) said.textContent = "Copied.";
  } catch {
    field.select(); // no clipboard access (plain HTTP): selected, for Ctrl+C
    if (said) said.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
  }
});
