"use strict";
fsv.ready.then(() => {
  const form = document.getElementById("report");
  const query = () => {
    const f = new FormData(form);
    const q = new URLSearchParams();
    if (f.get("from")) q.set("from", `${f.get("from")}T00:00:00+08:00`);
    if (f.get("to")) q.set("to", `${f.get("to")}T00:00:00+08:00`);
    return q;
  };
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const q = query();
    document.getElementById("out").textContent = JSON.stringify(await fsv.api(`/api/v1/reports?${q}`), null, 2);
    q.set("format", "csv"); document.getElementById("csv").href = `/api/v1/reports?${q}`;
    q.set("format", "html"); document.getElementById("print").href = `/api/v1/reports?${q}`;
  };
});
