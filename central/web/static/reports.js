"use strict";
const pct = (x) => (x == null ? "—" : `${(x * 100).toFixed(1)}%`);
const mins = (s) => (s == null ? "—" : `${(s / 60).toFixed(1)} min`);

// The figures a regulator reads first, one row each; the full report stays below as JSON.
function summary(r) {
  const a = r.alerts;
  const rows = [
    ["预警总数 Alerts", a.total], ["逾期 Overdue", a.overdue],
    ["平均确认时间 Mean time to acknowledge", mins(a.mean_time_to_acknowledge_s)],
    ["平均整改时间 Mean time to rectify", mins(a.mean_time_to_rectify_s)],
    ...Object.entries(a.by_state).map(([k, n]) => [`状态 State ${k}`, n]),
    ...Object.entries(a.by_kind).map(([k, n]) => [`类型 Kind ${k}`, n]),
    ...a.by_enterprise.map((e) => [`企业 ${e.name}`, e.count]),
    ["摄像头 Cameras", r.cameras.count], ["在线率 Online rate", pct(r.cameras.online_rate)],
    ["录像完整率 Recording completeness", pct(r.recording.completeness)],
    ["留存合规率 Retention compliance", pct(r.retention.compliance_rate)],
  ];
  return `<caption>${fsv.esc(r.period.from)} – ${fsv.esc(r.period.to)}</caption>` +
    rows.map(([k, v]) => `<tr><th>${fsv.esc(k)}</th><td>${fsv.esc(v)}</td></tr>`).join("");
}

fsv.ready.then(() => {
  const form = document.getElementById("report");
  const table = document.createElement("table");
  table.id = "summary";
  document.getElementById("out").before(table);
  const query = () => {
    const f = new FormData(form);
    const q = new URLSearchParams();
    if (f.get("from")) q.set("from", `${f.get("from")}T00:00:00+08:00`);
    // The "to" day is included: the period ends at its next midnight, or now if sooner.
    const end = Date.parse(`${f.get("to")}T00:00:00+08:00`) / 1000 + 86400;
    if (f.get("to")) q.set("to", String(Math.min(end, Math.floor(Date.now() / 1000))));
    return q;
  };
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const q = query();
    let report;
    try { report = await fsv.api(`/api/v1/reports?${q}`); } catch (e) {
      table.innerHTML = ""; document.getElementById("out").textContent = e.message; return;
    }
    table.innerHTML = summary(report);
    document.getElementById("out").textContent = JSON.stringify(report, null, 2);
    q.set("format", "csv"); document.getElementById("csv").href = `/api/v1/reports?${q}`;
    q.set("format", "html"); document.getElementById("print").href = `/api/v1/reports?${q}`;
  };
});
