// The audit page (docs/pages.md): events that live.js dispatches as "live:audit" are added on top of the list
// when the page's filters admit them; Pause holds them (and tells live.js, through data-live-paused, to stop
// re-rendering) and Resume adds what was held, saying how many. Rows are built with textContent: event data
// is never parsed as HTML. Without this script the page is a plain paged list.
(function () {
  "use strict";
  const stream = document.querySelector("#audit-stream[data-live-audit]");
  if (!stream) return;
  const root = document.documentElement;
  const rows = document.getElementById("audit-rows");
  const button = document.getElementById("audit-pause");
  const held = document.getElementById("audit-held");
  let filters = {};
  try { filters = JSON.parse(stream.dataset.filters || "{}"); } catch (e) { filters = {}; }
  const exact = { actor: "actor", action: "action", subjectType: "subjectType", subjectId: "subjectId", serviceId: "serviceId" };
  const since = filters.since ? Date.parse(filters.since) : null;
  const until = filters.until ? Date.parse(filters.until) : null;
  const seen = new Set(Array.from(rows.querySelectorAll("tr[data-seq]"), (row) => Number(row.dataset.seq)));
  let queue = [];

  // The same table as audit/views.py's subject_page.
  const pages = { Service: "/services/", Release: "/releases/", Environment: "/environments/" };
  function subjectPage(event) {
    if (event.subjectType === "Incident") {
      const query = event.serviceId ? "serviceId=" + encodeURIComponent(event.serviceId) : "";
      return "/incidents/?" + query + "#" + encodeURIComponent(event.subjectId);
    }
    return pages[event.subjectType] ? pages[event.subjectType] + encodeURIComponent(event.subjectId) + "/" : "";
  }

  function admits(event) {
    for (const [name, key] of Object.entries(exact)) {
      if (filters[name] !== undefined && event[key] !== filters[name]) return false;
    }
    const ts = Date.parse(event.ts);
    if (since !== null && !(ts >= since)) return false;
    if (until !== null && !(ts < until)) return false;
    return true;
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
    const href = subjectPage(event);
    const subject = cell(event.subjectType + " ", href ? link(href, event.subjectId) : event.subjectId);
    const runId = (event.metadata || {}).runId;
    if (typeof runId === "string" && runId) {
      const sub = document.createElement("span");
      sub.className = "sub";
      sub.append("run ", link("/runs/" + encodeURIComponent(runId) + "/", runId));
      subject.append(sub);
    }
    const service = event.serviceId ? cell(link("/services/" + encodeURIComponent(event.serviceId) + "/", event.serviceId)) : cell();
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
    if (!event || typeof event.seq !== "number" || seen.has(event.seq) || !admits(event)) return;
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
