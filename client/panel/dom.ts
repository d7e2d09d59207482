/**
 * A tiny element builder: the panel is plain DOM (no framework), and text always goes in as
 * text nodes, so item ids or reasons can never inject markup.
 */
export type Child = Node | string

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Readonly<Record<string, string>> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value)
  element.append(...children)
  return element
}
