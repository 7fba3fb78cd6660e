// GraphiQL on templates/graphql/graphiql.html, under the site's Content-Security-Policy: a script file (no
// inline script), React and GraphiQL from this origin (the UMD files next to this one), nothing from elsewhere.
//
// The page holds what is page-specific: the element to render into (#graphiql) and the example operations, one
// <pre> each in <template id="graphiql-examples">: the first is the default query, each is a tab (named after
// its operation). Queries go to the page's own URL (/graphql/) over the signed-in session, with the CSRF token that
// Django checks on every POST a session makes.
(function () {
  "use strict";

  // Radix's dialogs (settings, shortcuts) add a <style> element; it carries this nonce when one is set, so
  // style-src 'nonce-…' allows it. The nonce is readable from the script element's property (not its attribute).
  var nonce = document.currentScript && document.currentScript.nonce;
  if (nonce) {
    window.__webpack_nonce__ = nonce;
  }

  function cookie(name) {
    var parts = document.cookie ? document.cookie.split(";") : [];
    for (var i = 0; i < parts.length; i++) {
      var part = parts[i].trim();
      if (part.slice(0, name.length + 1) === name + "=") {
        return decodeURIComponent(part.slice(name.length + 1));
      }
    }
    return null;
  }

  var root = document.getElementById("graphiql");
  var endpoint = window.location.pathname; // the page's own URL: GET renders this page, POST runs a query

  async function fetcher(graphQLParams, options) {
    var headers = Object.assign({}, (options && options.headers) || {}, {
      "Content-Type": "application/json",
      Accept: "application/json",
      // The cookie Django sets; the token rendered into the page if there is none (it sets the cookie too).
      "X-CSRFToken": cookie("csrftoken") || root.dataset.csrfToken || "",
    });
    var response = await fetch(endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: headers,
      body: JSON.stringify(graphQLParams),
    });
    var type = response.headers.get("Content-Type") || "";
    if (type.indexOf("json") !== -1) {
      return response.json(); // a GraphQL response, errors included
    }
    // Not GraphQL: a CSRF refusal, an expired session sent to sign-in, a proxy error page.
    var hint = response.redirected || response.status === 401 ? " (sign in again: reload the page)" : "";
    return { errors: [{ message: "HTTP " + response.status + " " + response.statusText + hint }] };
  }

  var examples = [];
  var template = document.getElementById("graphiql-examples");
  if (template) {
    template.content.querySelectorAll("pre").forEach(function (pre) {
      examples.push({ query: pre.textContent.trim() + "\n" });
    });
  }

  var props = { fetcher: fetcher };
  if (examples.length) {
    props.defaultQuery = examples[0].query; // a new tab's
    props.defaultTabs = examples; // the first visit's tabs (later ones restore the last session's)
  }
  root.textContent = "";
  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, props));
})();
