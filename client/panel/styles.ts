/**
 * The panel's stylesheet, inside its shadow root. Apps theme it from outside with these custom
 * properties on `hearth-preferences` (or any ancestor); each falls back to a light or, under
 * `prefers-color-scheme: dark`, a dark default:
 *
 * | property                     | what                                  |
 * | ---------------------------- | ------------------------------------- |
 * | `--hearth-font`              | font shorthand family                 |
 * | `--hearth-text`              | text colour                           |
 * | `--hearth-muted`             | secondary text (hints, dates)         |
 * | `--hearth-background`        | panel background                      |
 * | `--hearth-surface`           | background of boxes inside the panel  |
 * | `--hearth-border`            | lines and box borders                 |
 * | `--hearth-accent`            | switches and the main buttons         |
 * | `--hearth-accent-text`       | text on the accent colour             |
 * | `--hearth-danger`            | the delete buttons                    |
 * | `--hearth-danger-text`       | text on the danger colour             |
 * | `--hearth-focus`             | keyboard focus ring                   |
 * | `--hearth-radius`            | corner radius                         |
 * | `--hearth-spacing`           | base spacing unit                     |
 *
 * The `theme` attribute pins a theme: `theme="light"` for apps that have no dark mode,
 * `theme="dark"` for apps that switch themselves.
 *
 * Narrow screens: terms stack above their values, everything wraps and long item ids break
 * anywhere, so 320 px never scrolls sideways.
 */
const DARK = `
    --_text: var(--hearth-text, #ececf1);
    --_muted: var(--hearth-muted, #a8a8b3);
    --_bg: var(--hearth-background, #18181b);
    --_surface: var(--hearth-surface, #232329);
    --_border: var(--hearth-border, #3d3d46);
    --_accent: var(--hearth-accent, #7aa2ff);
    --_accent-text: var(--hearth-accent-text, #0b1020);
    --_danger: var(--hearth-danger, #ff8a80);
    --_danger-text: var(--hearth-danger-text, #2b0000);
    --_focus: var(--hearth-focus, #7aa2ff);`

export const PANEL_CSS = `
:host {
  --_font: var(--hearth-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
  --_text: var(--hearth-text, #1d1d1f);
  --_muted: var(--hearth-muted, #5b5b63);
  --_bg: var(--hearth-background, #ffffff);
  --_surface: var(--hearth-surface, #f4f4f6);
  --_border: var(--hearth-border, #d0d0d7);
  --_accent: var(--hearth-accent, #2557d6);
  --_accent-text: var(--hearth-accent-text, #ffffff);
  --_danger: var(--hearth-danger, #b3261e);
  --_danger-text: var(--hearth-danger-text, #ffffff);
  --_focus: var(--hearth-focus, #2557d6);
  --_radius: var(--hearth-radius, 8px);
  --_space: var(--hearth-spacing, 0.75rem);
  display: block;
  box-sizing: border-box;
  max-width: 100%;
  color: var(--_text);
  background: var(--_bg);
  font-family: var(--_font);
  font-size: 1rem;
  line-height: 1.45;
}
@media (prefers-color-scheme: dark) {
  :host(:not([theme="light"])) {${DARK}
  }
}
:host([theme="dark"]) {${DARK}
}
:host([hidden]) { display: none; }
*, *::before, *::after { box-sizing: inherit; }
[hidden] { display: none !important; }
.panel { padding: var(--_space); overflow-wrap: anywhere; min-width: 0; container-type: inline-size; }
h2 { font-size: 1.25rem; margin: 0 0 calc(var(--_space) / 2); }
h3 { font-size: 1.05rem; margin: 0 0 calc(var(--_space) / 2); }
p { margin: 0 0 calc(var(--_space) / 2); }
section { margin-top: calc(var(--_space) * 1.5); }
.hint, .when { color: var(--_muted); font-size: 0.9rem; }
.status { min-height: 1.45em; font-weight: 600; }
.option { display: grid; grid-template-columns: auto 1fr; gap: 0 calc(var(--_space) / 1.5); align-items: start; margin-bottom: var(--_space); }
.option .hint { grid-column: 2; }
.option label { font-weight: 600; }
input[type="checkbox"] { width: 1.25rem; height: 1.25rem; margin: 0.1rem 0 0; accent-color: var(--_accent); }
input:disabled + label { color: var(--_muted); }
fieldset { border: 1px solid var(--_border); border-radius: var(--_radius); padding: var(--_space); margin: 0; min-width: 0; }
legend { font-weight: 600; padding: 0 0.25rem; }
dl { display: grid; grid-template-columns: minmax(0, max-content) minmax(0, 1fr); gap: 0.25rem var(--_space); margin: 0; }
dt { color: var(--_muted); }
dd { margin: 0; }
/* Narrow (a phone, a sidebar): each term above its value rather than two squeezed columns. */
@container (max-width: 30rem) {
  dl { grid-template-columns: minmax(0, 1fr); gap: 0; }
  dd { margin-bottom: calc(var(--_space) / 2); }
}
ul, ol { margin: 0; padding-left: 1.25rem; }
li { margin-bottom: 0.25rem; }
.decisions > li { margin-bottom: var(--_space); }
.notice { background: var(--_surface); border-radius: var(--_radius); padding: calc(var(--_space) / 2) var(--_space); }
.empty { background: var(--_surface); border-radius: var(--_radius); padding: var(--_space); margin-top: calc(var(--_space) * 1.5); }
.actions { display: flex; flex-wrap: wrap; gap: calc(var(--_space) / 2); margin-bottom: calc(var(--_space) / 2); }
button {
  font: inherit;
  min-height: 2.75rem;
  padding: 0.5rem 1rem;
  border-radius: var(--_radius);
  border: 1px solid var(--_accent);
  background: var(--_accent);
  color: var(--_accent-text);
  cursor: pointer;
  max-width: 100%;
}
button.secondary { background: transparent; color: var(--_text); border-color: var(--_border); }
button.danger { background: var(--_danger); border-color: var(--_danger); color: var(--_danger-text); }
.confirm { border: 2px solid var(--_danger); border-radius: var(--_radius); padding: var(--_space); }
:focus-visible { outline: 3px solid var(--_focus); outline-offset: 2px; }
.empty:focus { outline: none; }
.empty:focus-visible { outline: 3px solid var(--_focus); }
`
