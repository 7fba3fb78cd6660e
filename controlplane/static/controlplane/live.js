// Live updates for the server-rendered pages (docs/pages.md): one EventSource on the audit stream, the one an
// element's data-live-stream names (the audit page's, with its filters) or else the whole trail. An element
// with data-live-src="<url of its fragment>" and data-live-match="<ids>" (space-separated; "*" for any) is
// fetched again and replaced when an event names one of its ids (subject, service, source release, or
// environment) or its subject type ("Freeze"). One with data-live-refresh-in="<seconds>" is also fetched again
// that many seconds after it was rendered (when what it shows changes with time alone: an environment's change
// window opening); the server counts the seconds, so the browser's clock does not matter. One with
// data-live-actions="<audit actions>" (space-separated) is fetched again when an event of one of those actions
// arrives, whatever it names (the navigation's "awaiting your approval" count: data-live-refresh-in="0" fetches
// it once the page has loaded, so no page pays for it in its own queries).
// Every event is also dispatched on document as "live:audit" (the audit page lists them). Pages work,
// read-only, without this script.
(function () {
  "use strict";
  if (!window.EventSource || !document.querySelector("[data-live-src], [data-live-stream]")) return;
  const root = document.documentElement;
  const pending = new Set();
  let timer = null;

  function refresh() {
    timer = null;
    for (const element of pending) {
      fetch(element.dataset.liveSrc, { credentials: "same-origin", headers: { Accept: "text/html" } })
        // A redirect (to the sign-in page, once the session has expired) is no fragment: keep what is shown.
        .then((response) => (response.ok && !response.redirected ? response.text() : null))
        .then((html) => {
          if (html === null || !element.isConnected) return;
          const template = document.createElement("template");
          template.innerHTML = html.trim();
          const fresh = template.content.firstElementChild;
          if (!fresh) return;
          element.replaceWith(fresh);
          later(fresh);
          fresh.dispatchEvent(new CustomEvent("live:updated", { bubbles: true }));
        });
    }
    pending.clear();
  }

  function want(element) {
    pending.add(element);
    if (timer === null) timer = setTimeout(refresh, 150);
  }

  // The longest setTimeout browsers keep (about 24.8 days); a later change is asked for again then.
  const LONGEST_MS = 2147483647;
  function later(element) {
    const seconds = Number.parseInt(element.dataset.liveRefreshIn || "", 10);
    if (!Number.isFinite(seconds) || seconds < 0) return;
    setTimeout(() => { if (element.isConnected) want(element); }, Math.min(seconds * 1000 + 500, LONGEST_MS));
  }
  document.querySelectorAll("[data-live-refresh-in]").forEach(later);

  const named = document.querySelector("[data-live-stream]");
  const source = new EventSource(named ? named.dataset.liveStream : "/api/audit-events/stream");
  source.addEventListener("open", () => { root.dataset.live = "on"; });
  source.addEventListener("error", () => { root.dataset.live = "reconnecting"; });
  source.addEventListener("audit", (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch (e) { return; }
    document.dispatchEvent(new CustomEvent("live:audit", { detail: event }));
    if (root.dataset.livePaused === "true") return;
    const metadata = event.metadata || {};
    const ids = [event.subjectId, event.serviceId, metadata.sourceReleaseId, metadata.envId, event.subjectType]
      .filter(Boolean);
    for (const element of document.querySelectorAll("[data-live-src]")) {
      if (element.dataset.liveActions) {
        if (element.dataset.liveActions.split(/\s+/).includes(event.action)) want(element);
        continue;
      }
      const wanted = (element.dataset.liveMatch || "*").split(/\s+/);
      if (wanted.includes("*") || ids.some((id) => wanted.includes(id))) want(element);
    }
  });
})();
