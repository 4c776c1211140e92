// The console's live refresh: every few seconds the page's content is fetched afresh
// from /api/<page> and swapped in, and its charts are drawn again with uPlot.
"use strict";
(function () {
  const main = document.getElementById("page");
  const shown = document.getElementById("refreshed");
  const charts = [];

  function draw(series) {
    while (charts.length) charts.pop().destroy();
    for (const box of main.querySelectorAll(".chart")) {
      const chart = series[box.dataset.key];
      if (!chart || chart.data[0].length < 2) {
        box.textContent = "collecting data…";
        box.classList.add("waiting");
        continue;
      }
      box.textContent = "";
      box.classList.remove("waiting");
      const colours = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];
      const opts = {
        width: Math.max(320, box.clientWidth || 640), height: 180,
        series: [{}].concat(chart.labels.map((label, i) => ({
          label: label, stroke: colours[i % colours.length], width: 2, spanGaps: true,
        }))),
        axes: [{}, {size: 60}],
        legend: {show: true},
      };
      charts.push(new uPlot(opts, chart.data, box));
    }
  }

  async function refresh() {
    const page = main.dataset.page;
    if (!page) return;
    try {
      const answer = await fetch("/api/" + page, {cache: "no-store"});
      if (answer.ok) {
        const body = await answer.json();
        main.innerHTML = body.html;
        draw(body.series);
        shown.textContent = "updated " + new Date().toLocaleTimeString();
        shown.classList.remove("bad");
      } else {
        shown.textContent = "refresh failed: HTTP " + answer.status;
        shown.classList.add("bad");
      }
    } catch (error) {
      shown.textContent = "the console does not answer";
      shown.classList.add("bad");
    }
  }

  draw(JSON.parse(document.getElementById("series").textContent));
  const every = parseInt(main.dataset.refreshMs, 10);
  if (main.dataset.page && every > 0) setInterval(refresh, every);
})();
