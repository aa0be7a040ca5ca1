/**
 * The status page's style. Colours meet 4.5:1 against the page in both schemes (the light values
 * on white, the dark ones on the dark canvas); focus is always visible (a 3px outline).
 * @module
 */
export const pageStyle = `
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #59636e; --accent: #0969da; --line: #8886; --panel: #f6f8fa; }
@media (prefers-color-scheme: dark) {
  :root { --ok: #3fb950; --warn: #d29922; --bad: #f85149; --muted: #9198a1; --accent: #4493f8; --panel: #161b22; }
}
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 76rem; padding: 0 1rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; }
h3 { font-size: 1rem; margin: 1.25rem 0 .4rem; }
h4 { font-size: .95rem; margin: 0 0 .25rem; font-family: ui-monospace, monospace; }
p.meta, .hint, .empty { color: var(--muted); }
p.meta { margin: 0 0 1.5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .45rem .6rem; border-bottom: 1px solid var(--line); }
th { font-weight: 600; }
.status { font-weight: 600; white-space: nowrap; }
.status[data-status=ready] { color: var(--ok); }
.status[data-status=connecting], .status[data-status=needs_auth], .status[data-status=expired] { color: var(--warn); }
.status[data-status=down], .status[data-status=misconfigured] { color: var(--bad); }
.status[data-status=no_access] { color: var(--muted); }
.error { color: var(--bad); font-family: ui-monospace, monospace; font-size: 12px; }
.tools { font-family: ui-monospace, monospace; font-size: 12px; color: var(--muted); }
pre { font: 12px/1.4 ui-monospace, monospace; background: var(--panel); padding: .5rem .75rem; overflow: auto; max-height: 24rem; white-space: pre-wrap; word-break: break-word; }
/* White on #0969da is 5.1:1; the secondary button takes the page's own text colour. */
button { font: inherit; padding: .2rem .7rem; border-radius: 6px; border: 1px solid #0969da; background: #0969da; color: #fff; cursor: pointer; white-space: nowrap; }
button.secondary { background: transparent; color: inherit; border-color: currentColor; }
button:focus-visible, a:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, summary:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
button:disabled { opacity: .6; cursor: progress; }
a { color: var(--accent); }
#banner { display: none; padding: .5rem .75rem; margin-bottom: 1rem; border: 1px solid var(--bad); color: var(--bad); }
#banner.shown { display: block; }
.panel { border: 1px solid var(--line); border-radius: 8px; padding: .25rem 1rem 1rem; margin-top: 1.5rem; }
.panel[hidden] { display: none; }
.tool { border-top: 1px solid var(--line); padding: .75rem 0; }
.tool p { margin: .25rem 0 .5rem; }
form.fields { display: grid; gap: .75rem; max-width: 40rem; }
form.fields label { display: block; font-weight: 600; }
form.fields input[type=text], form.fields input[type=number], form.fields select, form.fields textarea { font: inherit; width: 100%; box-sizing: border-box; padding: .3rem .4rem; border: 1px solid var(--muted); border-radius: 4px; background: transparent; color: inherit; }
form.fields textarea { font-family: ui-monospace, monospace; min-height: 5rem; }
form.fields .check { display: flex; gap: .5rem; align-items: center; }
form.fields .check label { display: inline; }
.outcome { font-weight: 600; }
.outcome[data-error=true] { color: var(--bad); }
.outcome[data-error=false] { color: var(--ok); }
.filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; margin-bottom: .75rem; }
.filters label { display: block; font-weight: 600; }
.filters input, .filters select { font: inherit; padding: .2rem .4rem; border: 1px solid var(--muted); border-radius: 4px; background: transparent; color: inherit; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`
