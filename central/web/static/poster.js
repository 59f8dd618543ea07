// The poster page's one action: print (the sheet alone; the header and tools are not printed).
"use strict";
document.getElementById("print").addEventListener("click", () => window.print());
