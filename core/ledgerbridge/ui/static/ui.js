// Live progress on Settings › Integrations: while a card shows progress, poll its card.json every 2 s,
// update the numbers in place (announced through the card's aria-live text), and swap in the finished
// card once the progress is gone. Everything else on these pages works without this script.
(function () {
  "use strict";

  var INTERVAL_MS = 2000;

  function progressText(progress) {
    var text = progress.label + ": " + progress.done;
    if (progress.total !== null && progress.total !== undefined) {
      text += " of " + progress.total;
      if (progress.total > 0) {
        var percent = Math.max(0, Math.min(100, Math.round((100 * progress.done) / progress.total)));
        text += " (" + percent + "%)";
      }
    }
    return text;
  }

  function replaceCard(card, html) {
    var holder = document.createElement("div");
    holder.innerHTML = html; // rendered by the server with autoescaping
    var fresh = holder.firstElementChild;
    if (!fresh) {
      return card;
    }
    var hadFocus = card.contains(document.activeElement);
    card.replaceWith(fresh);
    if (hadFocus) {
      var heading = fresh.querySelector("h2");
      if (heading) {
        heading.setAttribute("tabindex", "-1");
        heading.focus();
      }
    }
    return fresh;
  }

  function poll(card) {
    var url = card.getAttribute("data-card-url");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        var progress = data.card && data.card.progress;
        if (!progress) {
          var fresh = replaceCard(card, data.html);
          if (fresh.getAttribute("data-poll") === "on") {
            schedule(fresh, INTERVAL_MS);
          }
          return;
        }
        var text = card.querySelector("[data-progress-text]");
        var bar = card.querySelector("[data-progress-bar]");
        if (!text || !bar) {
          card = replaceCard(card, data.html);
        } else {
          var wanted = progressText(progress);
          if (text.textContent.trim() !== wanted) {
            text.textContent = wanted;
          }
          if (progress.total) {
            bar.setAttribute("max", String(progress.total));
            bar.setAttribute("value", String(progress.done));
          } else {
            bar.removeAttribute("value");
          }
        }
        schedule(card, INTERVAL_MS);
      })
      .catch(function () {
        // a network blip or a signed-out session: try again, more slowly
        schedule(card, INTERVAL_MS * 3);
      });
  }

  function schedule(card, delay) {
    window.setTimeout(function () {
      if (document.body.contains(card)) {
        poll(card);
      }
    }, delay);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var cards = document.querySelectorAll('[data-card-url][data-poll="on"]');
    for (var i = 0; i < cards.length; i++) {
      schedule(cards[i], INTERVAL_MS);
    }
  });
})();
