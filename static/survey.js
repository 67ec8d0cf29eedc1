// The survey card (templates/_survey.html) sits in a page shared by many readers, so it cannot carry a
// CSRF token or know who answered: this fetches a token at the moment an option is tapped, and hides
// the cards of surveys this browser has answered (their ids are in the survey_done cookie).
"use strict";
(function () {
  function answered() {
    var m = document.cookie.match(/(?:^|;\s*)survey_done=([0-9.]*)/);
    return m ? m[1].split(".") : [];
  }
  function start() {
    var done = answered();
    document.querySelectorAll("section.survey[data-survey]").forEach(function (card) {
      if (done.indexOf(card.getAttribute("data-survey")) >= 0) { card.hidden = true; return; }
      var form = card.querySelector("form");
      form.addEventListener("submit", function (event) {
        var field = form.querySelector("input[name=csrf_token]");
        if (field.value) { return; }
        event.preventDefault();
        var button = event.submitter;
        form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
        // Without a token the server asks to confirm: no answer is ever lost, at worst one more tap.
        fetch(card.getAttribute("data-token"), {credentials: "same-origin", headers: {Accept: "application/json"}})
          .then(function (r) { return r.ok ? r.json() : {}; })
          .catch(function () { return {}; })
          .then(function (body) {
            field.value = body.csrfToken || "";
            form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
            if (!field.value) { field.value = "-"; }  // submit once without: the confirmation page
            if (button && form.requestSubmit) { form.requestSubmit(button); } else { form.submit(); }
          });
      });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
}());
