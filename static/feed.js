// Optional: shows post times as "5 min ago" in the reader's language. The page works without it.
(function () {
  if (!window.Intl || !Intl.RelativeTimeFormat) return;
  var rtf = new Intl.RelativeTimeFormat(document.documentElement.lang || undefined, { numeric: "auto" });
  var steps = [[60, "second"], [60, "minute"], [24, "hour"], [7, "day"]];
  function label(date) {
    var diff = (date - Date.now()) / 1000;
    for (var i = 0; i < steps.length; i++) {
      if (Math.abs(diff) < steps[i][0]) return rtf.format(Math.round(diff), steps[i][1]);
      diff /= steps[i][0];
    }
    return date.toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });
  }
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var date = new Date(el.getAttribute("datetime"));
    if (isNaN(date)) return;
    el.title = date.toLocaleString();
    el.textContent = label(date);
  });
})();
