// The front page: one card per page of the table of pages, and where the API lives.

import { h } from "./dom.js";
import { allPages } from "./shell.js";

const main = document.getElementById("main");
main.replaceChildren(
  h("h1", {}, "Mutual aid between cities, live"),
  h("p", { class: "lead" }, "Open the page for your role and sign in with the token your network admin issued."),
  h("ul", { class: "cards" },
    allPages()
      .filter((page) => page.nav_label)
      .map((page) =>
        h("li", { class: "panel card" },
          h("h2", {}, h("a", { href: page.path }, page.title)),
          h("p", {}, page.summary),
        ),
      ),
  ),
  h("p", { class: "fine" },
    "API documentation: ", h("a", { href: "/docs" }, "/docs"),
    " · health: ", h("a", { href: "/readyz" }, "/readyz"),
  ),
);
