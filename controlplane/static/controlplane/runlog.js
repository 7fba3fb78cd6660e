// The live tail of a running workflow run's log (docs/pages.md). An <ol class="log"> with
// data-run-stream="<url of the run's log stream>" and data-after="<id of the last entry rendered>" gets each
// new entry appended as the server writes it (`log` events: {ts, level, message, meta}); on the run's end
// (`end`: {state}) every [data-run-state="<run id>"] shows the final state and the stream closes. Logs that a
// live update (live.js) replaces are followed anew. Without this script the page shows the log as rendered.
(function () {
  "use strict";
  if (!window.EventSource) return;
  const open = new Map(); // <ol> -> EventSource

  function badge(state) {
    const span = document.createElement("span");
    span.className = "badge " + state;
    span.textContent = state;
    return span;
  }

  function entry(data) {
    const li = document.createElement("li");
    li.className = "level-" + (data.level || "info");
    const time = document.createElement("time");
    time.dateTime = data.ts || "";
    const at = data.ts ? new Date(data.ts) : null;
    time.textContent = at && !isNaN(at) ? at.toISOString().slice(11, 19) : "";
    const level = document.createElement("strong");
    level.textContent = data.level || "";
    li.append(time, " ", level, " ", data.message || "");
    if (data.meta && Object.keys(data.meta).length) {
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "meta";
      const pre = document.createElement("pre");
      pre.textContent = JSON.stringify(data.meta, null, 2);
      details.append(summary, pre);
      li.append(details);
    }
    return li;
  }

  function follow(log) {
    if (open.has(log)) return;
    const url = new URL(log.dataset.runStream, window.location.href);
    if (log.dataset.after) url.searchParams.set("after", log.dataset.after);
    const source = new EventSource(url.toString());
    open.set(log, source);
    source.addEventListener("log", (message) => {
      let data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      log.append(entry(data));
    });
    source.addEventListener("end", (message) => {
      let data = {};
      try { data = JSON.parse(message.data); } catch (e) { /* the state stays as shown */ }
      source.close();
      open.delete(log);
      log.removeAttribute("data-run-stream");
      log.dataset.runEnded = data.state || "";
      if (!data.state) return;
      for (const cell of document.querySelectorAll('[data-run-state="' + log.dataset.runId + '"]')) {
        cell.replaceChildren(badge(data.state));
      }
    });
  }

  function scan() {
    for (const [log, source] of open) {
      if (!log.isConnected) { source.close(); open.delete(log); }
    }
    for (const log of document.querySelectorAll("ol.log[data-run-stream]")) follow(log);
  }

  document.addEventListener("live:updated", scan);
  scan();
})();
