// DOM helpers. Log content is untrusted: strings always become text nodes, never HTML.

import { jsonTokens, visible } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";

export const $ = (id) => document.getElementById(id);

function put(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k == null || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(visible(String(k))));
  }
  return el;
}

/** Attributes from props: "class", "on<event>" handlers, true as "", null/false left out. */
export function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === "class") el.setAttribute("class", v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : k === "title" ? visible(String(v)) : String(v));
  }
  return el;
}

/** An HTML element: h("td", { class: "t" }, "text", child, [more]). */
export const h = (tag, props, ...kids) => put(setProps(document.createElement(tag), props), kids);
/** An SVG element, likewise. */
export const s = (tag, props, ...kids) => put(setProps(document.createElementNS(SVG, tag), props), kids);

/** Pretty JSON with light colouring; every piece is a text node. */
export function jsonView(obj) {
  return put(h("pre", { class: "json" }), jsonTokens(obj).map(([cls, text]) => (cls ? h("span", { class: cls }, text) : text)));
}
