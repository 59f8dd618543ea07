// Reports of the user's scope for a period of local days: key figures, charts, CSV/XLSX, print.
"use strict";

function figures(r) {
  const a = r.alerts;
  return [
    ["reports.alerts", a.total], ["reports.overdue", a.overdue],
    ["reports.mtta", fsv.duration(a.mean_time_to_acknowledge_s)],
    ["reports.mttr", fsv.duration(a.mean_time_to_rectify_s)],
    ["reports.cameras", r.cameras.count], ["reports.online_rate", fsv.pct(r.cameras.online_rate)],
    ["reports.recording", fsv.pct(r.recording.completeness)],
    ["reports.retention", fsv.pct(r.retention.compliance_rate)],
  ];
}

function rows(r) {
  const a = r.alerts;
  return [
    ...figures(r).map(([k, v]) => [fsv.t(k), v]),
    ...Object.entries(a.by_state).map(([k, n]) => [`${fsv.t("field.state")} · ${fsv.label("state", k)}`, n]),
    ...Object.entries(a.by_kind).map(([k, n]) => [`${fsv.t("field.kind")} · ${fsv.label("kind", k)}`, n]),
    ...a.by_enterprise.map((e) => [`${fsv.t("field.enterprise")} · ${e.name}`, e.count]),
  ];
}

function draw(r) {
  const a = r.alerts;
  document.getElementById("charts").hidden = a.total === 0;
  if (a.total === 0) return;
  const kinds = Object.entries(a.by_kind).sort((x, y) => y[1] - x[1]);
  fsvCharts.bar(reportCharts.kind, kinds.map(([k]) => fsv.label("kind", k)), kinds.map(([, n]) => n));
  fsvCharts.pie(reportCharts.state, Object.entries(a.by_state).map(([k, n]) => ({ name: fsv.label("state", k), value: n })));
  const ents = [...a.by_enterprise].sort((x, y) => y.count - x.count).slice(0, 15);
  fsvCharts.bar(reportCharts.enterprise, ents.map((e) => e.name), ents.map((e) => e.count), true);
}

const reportCharts = {};

fsv.ready.then(() => {
  const form = document.getElementById("report");
  const today = fsv.today();
  form.elements.from.value = fsv.date(Date.now() / 1000 - 6 * 86400);
  form.elements.to.value = today;
  reportCharts.kind = fsvCharts.make(document.getElementById("chart-kind"));
  reportCharts.state = fsvCharts.make(document.getElementById("chart-state"));
  reportCharts.enterprise = fsvCharts.make(document.getElementById("chart-enterprise"));
  const query = () => {
    const f = new FormData(form);
    const q = new URLSearchParams();
    const from = fsv.zoned(f.get("from"));
    // The "to" day is included: the period ends at its next midnight, or now if sooner.
    const end = Math.min(fsv.zoned(f.get("to")) + 86400, Math.floor(Date.now() / 1000));
    q.set("from", String(from));
    q.set("to", String(end));
    return { q, from, end };
  };
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const { q, from, end } = query();
    const error = document.getElementById("error");
    let report;
    try { report = await fsv.api(`/api/v1/reports?${q}`); } catch (e) {
      error.textContent = e.message;
      document.getElementById("summary").innerHTML = "";
      document.getElementById("figures").innerHTML = "";
      return;
    }
    error.textContent = "";
    document.getElementById("period").textContent = fsv.t("reports.period", { from: fsv.time(from), to: fsv.time(end) });
    document.getElementById("figures").innerHTML = figures(report).map(([k, v]) =>
      `<div class="figure"><span class="value">${fsv.esc(v)}</span><span class="name">${fsv.esc(fsv.t(k))}</span></div>`).join("");
    document.getElementById("summary").innerHTML = rows(report).map(([k, v]) => `<tr><th>${fsv.esc(k)}</th><td>${fsv.esc(v)}</td></tr>`).join("");
    draw(report);
    integrity();
    q.set("format", "csv");
    const csv = document.getElementById("csv");
    csv.href = `/api/v1/reports?${q}`;
    csv.hidden = false;
    q.set("format", "xlsx");
    const xlsx = document.getElementById("xlsx");
    xlsx.href = `/api/v1/reports?${q}`;
    xlsx.hidden = false;
    document.getElementById("print").hidden = false;
  };
  document.getElementById("print").onclick = () => window.print();
  // Footage integrity per camera: anchored hours, segments audited, the last audit's result.
  const integrity = async () => {
    const table = document.getElementById("integrity");
    let data;
    try { data = await fsv.api("/api/v1/integrity/cameras"); } catch (e) { table.innerHTML = ""; return; }
    const head = ["reports.camera", "reports.anchored_hours", "reports.audited", "reports.last_audit", "reports.findings"];
    table.innerHTML = `<tr>${head.map((k) => `<th>${fsv.esc(fsv.t(k))}</th>`).join("")}</tr>` +
      data.items.map((c) => `<tr><td>${fsv.esc(c.site_id)}/${fsv.esc(c.camera_id)}</td>` +
        `<td>${fsv.esc(c.anchored_hours.toFixed(1))}</td><td>${fsv.esc(c.audited)}</td>` +
        `<td>${c.last_audit_at ? `${fsv.esc(fsv.time(c.last_audit_at))} ${fsv.esc(fsv.t(`reports.audit_${c.last_audit_result}`))}` : "–"}</td>` +
        `<td>${fsv.esc(c.findings)}</td></tr>`).join("");
  };
  form.requestSubmit();
});
