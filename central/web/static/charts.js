// ECharts (vendored under /static/vendor/echarts, Apache-2.0) set up the pages' way: canvas,
// plain-text tooltips (the CSP refuses the inline styles of HTML tooltips), resize with the box.
"use strict";
const fsvCharts = {
  all: [],
  palette: ["#3b82f6", "#f59e0b", "#ef4444", "#10b981", "#8b5cf6", "#06b6d4", "#f97316", "#84cc16", "#ec4899", "#64748b"],
  make(el, dark) {
    const chart = echarts.init(el, null, { renderer: "canvas" });
    chart.fsvDark = !!dark;
    fsvCharts.all.push(chart);
    // The box changes size when the panels around it fill in, not only with the window.
    if (window.ResizeObserver) new ResizeObserver(() => chart.resize()).observe(el);
    return chart;
  },
  base(dark) {
    const text = dark ? "#cfe3ff" : "#333";
    return {
      color: fsvCharts.palette,
      textStyle: { color: text, fontFamily: "system-ui, 'Noto Sans CJK SC', sans-serif" },
      tooltip: { renderMode: "richText", trigger: "item" },
      grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
      animation: false,
    };
  },
  bar(chart, labels, values, horizontal) {
    const dark = chart.fsvDark;
    const axisText = { color: dark ? "#cfe3ff" : "#333" };
    const cat = { type: "category", data: labels, axisLabel: { ...axisText, interval: 0, overflow: "truncate", width: horizontal ? 120 : 80 } };
    const val = { type: "value", minInterval: 1, axisLabel: axisText, splitLine: { lineStyle: { color: dark ? "#1e3a5f" : "#eee" } } };
    chart.setOption({
      ...fsvCharts.base(dark),
      tooltip: { renderMode: "richText", trigger: "axis" },
      xAxis: horizontal ? val : cat,
      yAxis: horizontal ? { ...cat, inverse: true } : val,
      series: [{ type: "bar", data: values, barMaxWidth: 28, label: { show: true, position: horizontal ? "right" : "top", color: axisText.color } }],
    }, true);
  },
  pie(chart, items) {
    chart.setOption({
      ...fsvCharts.base(chart.fsvDark),
      legend: { bottom: 0, textStyle: { color: chart.fsvDark ? "#cfe3ff" : "#333" } },
      series: [{ type: "pie", radius: ["35%", "65%"], center: ["50%", "45%"], data: items, label: { formatter: "{b}: {c}", color: chart.fsvDark ? "#cfe3ff" : "#333" } }],
    }, true);
  },
  line(chart, labels, series) {
    const dark = chart.fsvDark;
    const axisText = { color: dark ? "#cfe3ff" : "#333" };
    chart.setOption({
      ...fsvCharts.base(dark),
      tooltip: { renderMode: "richText", trigger: "axis" },
      legend: { top: 0, textStyle: axisText },
      grid: { left: 8, right: 16, top: 30, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: labels, axisLabel: axisText, boundaryGap: false },
      yAxis: { type: "value", minInterval: 1, axisLabel: axisText, splitLine: { lineStyle: { color: dark ? "#1e3a5f" : "#eee" } } },
      series: series.map((s) => ({ type: "line", areaStyle: { opacity: 0.15 }, ...s })),
    }, true);
  },
};
window.addEventListener("resize", () => fsvCharts.all.forEach((c) => c.resize()));
