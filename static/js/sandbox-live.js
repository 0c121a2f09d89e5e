// The experiment page's fallback when its live stream is refused or lost: poll the same fragments every few
// seconds until a stream opens again. The server refuses a stream beyond the caps per learner and per
// experiment (429), and htmx's SSE extension keeps retrying it with a growing delay; each error starts the
// polling, each opened stream stops it. A separate file: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";

  var POLL_MS = 3000;

  function follow(root) {
    var url = root.getAttribute("data-live-url");
    var note = document.getElementById("live-note");
    var timer = null;

    function stop() {
      if (timer !== null) {
        window.clearInterval(timer);
        timer = null;
      }
      if (note) {
        note.hidden = true;
      }
    }

    function poll() {
      window
        .fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 286) {
            // The experiment ended: the page itself shows the final numbers.
            stop();
            window.location.reload();
            return null;
          }
          return response.ok ? response.json() : null;
        })
        .then(function (fragments) {
          if (!fragments) {
            return;
          }
          Object.keys(fragments).forEach(function (name) {
            var target = document.getElementById(name);
            if (target) {
              window.htmx.swap(target, fragments[name], { swapStyle: "innerHTML" });
            }
          });
        })
        .catch(function () {
          // No network for a moment: the next poll tries again.
        });
    }

    root.addEventListener("htmx:sseError", function () {
      if (timer === null) {
        if (note) {
          note.hidden = false;
        }
        poll();
        timer = window.setInterval(poll, POLL_MS);
      }
    });
    root.addEventListener("htmx:sseOpen", stop);
    root.addEventListener("htmx:sseClose", stop);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.querySelector("[data-live-url]");
    if (root) {
      follow(root);
    }
  });
})();
