// When an htmx request fails (the site busy, a body too large, an error on our side, or no network), htmx swaps
// nothing and the learner would see nothing happen. Say what happened and what to do in the page's error region.
// A separate file, not an inline script: the Content-Security-Policy allows scripts from this site only.
(function () {
  "use strict";

  function region() {
    return document.getElementById("request-error");
  }

  function messageFor(xhr) {
    var type = (xhr.getResponseHeader("Content-Type") || "").toLowerCase();
    // The site's own plain-text refusals (413: too large) already say what happened and what to do.
    if (type.indexOf("text/plain") === 0 && xhr.responseText && xhr.responseText.length < 500) {
      return xhr.responseText;
    }
    if (xhr.status === 503) {
      return "The site is busy for a moment and nothing was saved. Try again in a few seconds.";
    }
    if (xhr.status === 413) {
      return "What you sent is too large for this page, so nothing was saved.";
    }
    if (xhr.status === 403) {
      return "Your session has expired or you were logged out. Reload the page, log in if asked, and try again.";
    }
    if (xhr.status === 404) {
      return "This page no longer exists, or is not yours. Reload the page to see where things stand.";
    }
    return "Something went wrong on our side (error " + xhr.status + "). Reload the page and try again.";
  }

  function show(text) {
    var target = region();
    if (!target) {
      return;
    }
    target.textContent = text;
    target.hidden = false;
    target.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("htmx:responseError", function (event) {
    show(messageFor(event.detail.xhr));
  });
  document.addEventListener("htmx:sendError", function () {
    show("The site did not answer: check your connection, then try again.");
  });
  document.addEventListener("htmx:timeout", function () {
    show("The site took too long to answer. Try again in a few seconds.");
  });
  // A request that worked clears the message of one that did not.
  document.addEventListener("htmx:afterRequest", function (event) {
    var target = region();
    if (target && event.detail.successful) {
      target.hidden = true;
      target.textContent = "";
    }
  });
})();
