/* monitor web page: charts and small conveniences. No inline script anywhere: data comes
   from <script type="application/json"> blocks, read with JSON.parse (never evaluated). */
(function () {
  "use strict";

  function data(id) {
    var el = document.getElementById(id);
    if (!el) return null;
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  // selects in a form.auto submit on change
  document.querySelectorAll("form.auto select").forEach(function (sel) {
    sel.addEventListener("change", function () { sel.form.submit(); });
  });

  // "Copy" buttons: the text of the element named by data-copy to the clipboard (a reply draft)
  document.querySelectorAll("button[data-copy]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var el = document.getElementById(btn.getAttribute("data-copy"));
      if (!el) return;
      var done = function () { btn.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(el.value).then(done, function () { el.select(); document.execCommand("copy"); done(); });
      } else { el.select(); document.execCommand("copy"); done(); }
    });
  });

  if (typeof Chart === "undefined") return;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#5b6472";
  Chart.defaults.animation = false;
  var COLORS = {positive: "#1f9d6b", neutral: "#a7b0bd", negative: "#d64545", other: "#e3e7ee",
                "text:relationship": "#3b6fd8", "text:transactional": "#8a55d6", "stars:transactional": "#e08a12",
                "survey:relationship": "#1f8a8a", "survey:transactional": "#b8467a"};
  var LABELS = {"text:relationship": "Social mentions · text model", "text:transactional": "Reviews · text model",
                "stars:transactional": "Reviews · star ratings", "survey:relationship": "Surveys · scores",
                "survey:transactional": "Support surveys · scores"};

  var o = data("overview-data");
  if (o && document.getElementById("chart-mentions")) {
    var other = o.mentions.map(function (n, i) { return Math.max(0, n - o.positive[i] - o.neutral[i] - o.negative[i]); });
    new Chart(document.getElementById("chart-mentions"), {
      type: "bar",
      data: {labels: o.weeks, datasets: [
        {label: "positive", data: o.positive, backgroundColor: COLORS.positive, stack: "s"},
        {label: "neutral", data: o.neutral, backgroundColor: COLORS.neutral, stack: "s"},
        {label: "negative", data: o.negative, backgroundColor: COLORS.negative, stack: "s"},
        {label: "not classified", data: other, backgroundColor: COLORS.other, stack: "s"}]},
      options: {maintainAspectRatio: false, scales: {x: {stacked: true, grid: {display: false}}, y: {stacked: true, beginAtZero: true}},
                plugins: {legend: {position: "bottom", labels: {boxWidth: 12}}}}
    });
    var sets = [];
    Object.keys(o.index).forEach(function (key) {
      if (!o.index[key].some(function (v) { return v !== null; })) return;
      var c = COLORS[key] || "#555";
      sets.push({label: LABELS[key] || key, data: o.index[key], borderColor: c, backgroundColor: c, spanGaps: false,
                 pointRadius: 3, tension: 0.2});
      sets.push({label: "_low", data: o.index_low[key], borderColor: "transparent", pointRadius: 0, fill: false});
      sets.push({label: "_high", data: o.index_high[key], borderColor: "transparent", pointRadius: 0,
                 backgroundColor: c + "22", fill: "-1"});
    });
    new Chart(document.getElementById("chart-index"), {
      type: "line",
      data: {labels: o.weeks, datasets: sets},
      options: {maintainAspectRatio: false, scales: {y: {min: -100, max: 100}, x: {grid: {display: false}}},
                plugins: {legend: {position: "bottom", labels: {boxWidth: 12, filter: function (item) { return item.text.charAt(0) !== "_"; }}},
                          tooltip: {filter: function (item) { return item.dataset.label.charAt(0) !== "_"; }}}}
    });
  }

  var when = data("timeline-data"), stances = data("timeline-stances");
  if (when && stances && document.getElementById("chart-timeline") && when.length) {
    var Y = {promoter: 1, passive: 0, detractor: -1};
    var points = [], colors = [];
    for (var i = when.length - 1; i >= 0; i--) {
      if (!(stances[i] in Y)) continue;
      points.push({x: when[i].slice(0, 10), y: Y[stances[i]]});
      colors.push(stances[i] === "promoter" ? COLORS.positive : stances[i] === "detractor" ? COLORS.negative : COLORS.neutral);
    }
    var days = points.map(function (p) { return p.x; }).filter(function (d, i, a) { return a.indexOf(d) === i; });
    new Chart(document.getElementById("chart-timeline"), {
      type: "line",
      data: {labels: days, datasets: [{data: points, showLine: false, pointBackgroundColor: colors,
             pointBorderColor: colors, pointRadius: 6, pointHoverRadius: 8, clip: false}]},
      options: {maintainAspectRatio: false, plugins: {legend: {display: false}}, layout: {padding: {top: 8, bottom: 8, right: 8}},
                scales: {y: {min: -1, max: 1, ticks: {stepSize: 1, callback: function (v) {
                  return v === 1 ? "promoter" : v === 0 ? "passive" : v === -1 ? "detractor" : ""; }}},
                         x: {grid: {display: false}}}}
    });
  }

  var topics = data("topics-data");
  if (topics && document.getElementById("chart-topics") && topics.weeks.length) {
    var PALETTE = ["#3b6fd8", "#e08a12", "#1f9d6b", "#d64545", "#8a55d6", "#1f8a8a", "#b8467a", "#7a8a1f", "#5b6472",
                   "#c9a227", "#2f4858", "#a0522d"];
    new Chart(document.getElementById("chart-topics"), {
      type: "bar",
      data: {labels: topics.weeks, datasets: topics.themes.map(function (t, i) {
        return {label: t.label, data: t.counts, backgroundColor: PALETTE[i % PALETTE.length], stack: "t"};
      })},
      options: {maintainAspectRatio: false, scales: {x: {stacked: true, grid: {display: false}}, y: {stacked: true, beginAtZero: true}},
                plugins: {legend: {position: "bottom", labels: {boxWidth: 12}}}}
    });
  }

  var compare = data("compare-data");
  if (compare && document.getElementById("chart-compare") && compare.weeks.length) {
    var BRAND_COLORS = ["#3b6fd8", "#e08a12", "#1f9d6b", "#d64545", "#8a55d6", "#1f8a8a", "#b8467a", "#7a8a1f"];
    new Chart(document.getElementById("chart-compare"), {
      type: "bar",
      data: {labels: compare.weeks, datasets: compare.brands.map(function (b, i) {
        return {label: b.brand + (b.competitor ? " (competitor)" : ""), stack: "s",
                data: b.share.map(function (v) { return v === null ? null : Math.round(v * 1000) / 10; }),
                backgroundColor: BRAND_COLORS[i % BRAND_COLORS.length]};
      })},
      options: {maintainAspectRatio: false, scales: {x: {stacked: true, grid: {display: false}},
                                                     y: {stacked: true, min: 0, max: 100, ticks: {callback: function (v) { return v + "%"; }}}},
                plugins: {legend: {position: "bottom", labels: {boxWidth: 12}}}}
    });
  }

  // the Programme page: referrals per week (bars, per brand) and their value (line, right axis)
  var prog = data("programme-data");
  if (prog && document.getElementById("chart-programme") && prog.weeks.length) {
    var PROG_COLORS = ["#3b6fd8", "#e08a12", "#1f9d6b", "#d64545", "#8a55d6", "#1f8a8a"];
    var sets = [];
    prog.brands.forEach(function (b, i) {
      var c = PROG_COLORS[i % PROG_COLORS.length];
      sets.push({type: "bar", label: b.brand + " referrals", data: b.counts, backgroundColor: c, yAxisID: "y"});
      sets.push({type: "line", label: b.brand + " value", data: b.values, borderColor: c, backgroundColor: c,
                 borderDash: [4, 3], yAxisID: "v", pointRadius: 2});
    });
    new Chart(document.getElementById("chart-programme"), {
      data: {labels: prog.weeks, datasets: sets},
      options: {maintainAspectRatio: false,
                scales: {x: {grid: {display: false}}, y: {min: 0, ticks: {precision: 0}, title: {display: true, text: "referrals"}},
                         v: {position: "right", min: 0, grid: {display: false}, title: {display: true, text: "value"}}},
                plugins: {legend: {position: "bottom", labels: {boxWidth: 12}}}}
    });
  }
})();
