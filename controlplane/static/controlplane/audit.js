// The audit page (docs/pages.md): live.js opens the stream the page names (data-live-stream: the audit stream with
// the page's exact filters, matched by the server) and dispatches its events as "live:audit"; they are added on
// top of the list when their time is in the window the server left for new events (data-live-start/-end, from
// the page's since and until), with the links the server's URL templates make (data-pages). Pause holds them
// (and tells live.js, through data-live-paused, to stop re-rendering) and Resume adds what was held, saying how
// many. Rows are built with textContent: event data is never parsed as HTML. Without this script the page is a
// plain paged list.
(function () {
  "use strict";
  const stream = document.querySelector("#audit-stream[data-live-stream]");
  if (!stream) return;
  const root = document.documentElement;
  const rows = document.getElementById("audit-rows");
  const button = document.getElementById("audit-pause");
  const held = document.getElementById("audit-held");
  let pages = {};
  try { pages = JSON.parse(stream.dataset.pages || "{}"); } catch (e) { pages = {}; }
  const start = stream.dataset.liveStart ? Date.parse(stream.dataset.liveStart) : -Infinity;
  const end = stream.dataset.liveEnd ? Date.parse(stream.dataset.liveEnd) : Infinity;
  const seen = new Set(Array.from(rows.querySelectorAll("tr[data-seq]"), (row) => Number(row.dataset.seq)));
  let queue = [];

  function inWindow(event) {
    const ts = Date.parse(event.ts);
    return ts >= start && ts < end;
  }

  // A URL template of the server's ("/releases/{subjectId}/"), its fields filled in from the event's.
  function fill(template, fields) {
    return template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(fields[name] || ""));
  }

  function link(href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function cell(...children) {
    const td = document.createElement("td");
    for (const child of children) td.append(child);
    return td;
  }

  function row(event) {
    const tr = document.createElement("tr");
    tr.dataset.seq = String(event.seq);
    tr.className = "fresh";
    const seq = cell(String(event.seq));
    seq.className = "mono";
    const time = document.createElement("time");
    time.dateTime = event.ts;
    time.title = event.ts;
    time.textContent = "just now";
    const action = cell(event.action);
    action.className = "mono";
    const runId = (event.metadata || {}).runId;
    const fields = { subjectId: event.subjectId, serviceId: event.serviceId, runId: typeof runId === "string" ? runId : "" };
    const page = (pages.subject || {})[event.subjectType];
    const subject = cell(event.subjectType + " ", page ? link(fill(page, fields), event.subjectId) : event.subjectId);
    if (fields.runId && pages.run) {
      const sub = document.createElement("span");
      sub.className = "sub";
      sub.append("run ", link(fill(pages.run, fields), fields.runId));
      subject.append(sub);
    }
    const service = event.serviceId && pages.service ? cell(link(fill(pages.service, fields), event.serviceId)) : cell();
    tr.append(seq, cell(time), cell(event.actor), action, subject, service);
    return tr;
  }

  function add(events) {
    for (const event of events) {
      if (seen.has(event.seq)) continue;
      seen.add(event.seq);
      rows.prepend(row(event));
    }
    const empty = document.getElementById("audit-empty");
    if (empty && rows.firstElementChild) empty.remove();
  }

  function paused() { return root.dataset.livePaused === "true"; }

  document.addEventListener("live:audit", (message) => {
    const event = message.detail;
    if (!event || typeof event.seq !== "number" || seen.has(event.seq) || !inWindow(event)) return;
    if (paused()) {
      if (!queue.some((e) => e.seq === event.seq)) queue.push(event);
      held.textContent = queue.length + (queue.length === 1 ? " new event" : " new events") + " held while paused.";
      return;
    }
    add([event]);
  });

  button.hidden = false;
  button.addEventListener("click", () => {
    if (paused()) {
      delete root.dataset.livePaused;
      button.textContent = "Pause";
      button.setAttribute("aria-pressed", "false");
      const count = queue.length;
      add(queue.sort((a, b) => a.seq - b.seq));
      queue = [];
      held.textContent = "Resumed: " + count + (count === 1 ? " event" : " events") + " held while paused added.";
    } else {
      root.dataset.livePaused = "true";
      button.textContent = "Resume";
      button.setAttribute("aria-pressed", "true");
      held.textContent = "Paused: new events are held.";
    }
  });
})();
