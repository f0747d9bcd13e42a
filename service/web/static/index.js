// The front page: one card per page of the table of pages, and where the API lives.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { allPages } from "./shell.js";

const main = document.getElementById("main");
main.replaceChildren(
  h("h1", {}, t("index.heading")),
  h("p", { class: "lead" }, t("index.lead")),
  h("ul", { class: "cards" },
    allPages()
      .filter((page) => page.nav_label)
      .map((page) =>
        h("li", { class: "panel card" },
          h("h2", {}, h("a", { href: page.path }, t(`page.${page.id}.title`))),
          h("p", {}, t(`page.${page.id}.summary`)),
        ),
      ),
  ),
  h("p", { class: "fine" },
    t("index.api_docs"), " ", h("a", { href: "/docs" }, "/docs"),
    " · ", t("index.health"), " ", h("a", { href: "/readyz" }, "/readyz"),
  ),
);
