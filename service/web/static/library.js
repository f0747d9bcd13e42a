// The playbook library: versions of playbooks published by the cities of your networks,
// each with its track record; diffs against its parent, the stock playbook or another
// city's; a dry run of declaring it here and now; adopt or fork it; publish your own;
// and notices of newer versions of what you adopted, to pull in or ignore.

import { h } from "./dom.js";
import { fetchAll } from "./api.js";
import { typeLabel } from "./format.js";
import { number, t } from "./i18n.js";
import { busy, notify } from "./notices.js";
import { dryRunView } from "./dryrun.js";
import { startPage } from "./shell.js";

startPage({
  hint: t("library.hint"),
  start: startLibrary,
});

/** "12 min", "1.5 h": a duration in seconds, or a dash when there is none. */
function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 120) return t("time.s", { n: Math.round(value) });
  if (value < 7_200) return t("time.min", { n: Math.round(value / 60) });
  return t("time.h", { n: number(value / 3_600, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) });
}

function recordLine(record) {
  if (!record.incident_count) return t("library.not_declared");
  const rate = record.fill_rate === null ? "–" : `${Math.round(record.fill_rate * 100)}%`;
  return [
    t("library.record_counts", { incidents: record.incident_count, requests: record.request_count }),
    t("library.first_claim", { p50: seconds(record.first_claim_p50_s), p90: seconds(record.first_claim_p90_s) }),
    t("library.fill", { p50: seconds(record.fill_p50_s), p90: seconds(record.fill_p90_s) }),
    t("library.fill_rate", { rate }),
    t("library.expired_unfilled", { count: record.expired_unfilled_count }),
    t("library.escalations", { count: record.escalation_count }),
  ].join(" · ");
}

async function startLibrary({ api, me, city, main, connect }) {
  const typeFilter = h("select", { id: "library-type", onchange: () => loadVersions() },
    h("option", { value: "" }, t("library.every_type")));
  const networkFilter = h("select", { id: "library-network", onchange: () => loadVersions() },
    h("option", { value: "" }, t("library.every_network")));
  const refresh = h("button", { type: "button", class: "secondary small", id: "library-refresh", onclick: () => loadAll() }, t("library.refresh"));
  const notices = h("ul", { class: "incident-list", id: "library-notices" });
  const lineage = h("ul", { class: "incident-list", id: "library-lineage" });
  const versions = h("ul", { class: "incident-list", id: "library-versions" });
  const detail = h("div", { id: "library-detail", "aria-live": "polite" });
  const publishType = h("select", { id: "publish-type", name: "incident_type" });
  const publishNote = h("input", { id: "publish-note", name: "change_note", maxlength: 2000, autocomplete: "off" });
  const publishButton = h("button", { type: "submit", class: "primary" }, t("library.publish"));
  const publishForm = h("form", { class: "stack", id: "publish-form" },
    h("label", { class: "field" }, t("library.your_playbook"), publishType),
    h("label", { class: "field" }, t("library.what_changed"), publishNote),
    publishButton,
  );
  publishForm.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(publishButton, async () => {
      const type = publishType.value;
      const version = await api(`/cities/${me.city_id}/library/${encodeURIComponent(type)}`, {
        method: "POST",
        body: { change_note: publishNote.value.trim() },
      });
      notify(t("library.published", { label: version.label }), "ok");
      publishNote.value = "";
      await loadAll();
    });
  });

  main.append(
    h("div", { class: "console manage" },
      h("section", { class: "panel col-incidents", "aria-labelledby": "library-title" },
        h("h1", { id: "library-title" }, t("page.library.title")),
        h("div", { class: "row" }, typeFilter, networkFilter, refresh),
        h("h2", {}, t("library.newer")),
        notices,
        h("h2", {}, `${city.name}’s playbooks`),
        lineage,
        h("details", { class: "declare", id: "publish" },
          h("summary", {}, t("library.publish_summary")),
          publishForm,
        ),
        h("h2", {}, t("library.published_versions")),
        versions,
      ),
      h("section", { class: "panel col-main", "aria-label": t("library.selected_version") }, detail),
    ),
  );

  for (const network of await fetchAll(api, "/networks")) {
    if (network.city_ids.includes(me.city_id)) {
      networkFilter.append(h("option", { value: network.id }, network.name));
    }
  }

  async function loadAll() {
    await Promise.all([loadNotices(), loadLineage(), loadVersions()]);
  }

  async function loadNotices() {
    const found = await api("/library/notices");
    notices.replaceChildren(
      ...(found.length
        ? found.map((n) =>
            h("li", { class: "notice-item", dataset: { versionId: n.newer.version_id } },
              h("p", {}, t("library.newer_out", { newer: n.newer.label, current: n.current.label })),
              h("pre", { class: "diff" }, n.diff || t("library.no_text_change")),
              h("div", { class: "actions" },
                actionButton(t("library.pull_in"), "adopt", n.newer.version_id),
                actionButton(t("library.ignore"), "ignore", n.newer.version_id, "secondary"),
              ),
            ),
          )
        : [h("li", { class: "empty" }, t("library.nothing_new"))]),
    );
  }

  async function loadLineage() {
    const found = await api("/library/lineage");
    lineage.replaceChildren(
      ...(found.length
        ? found.map((l) =>
            h("li", { dataset: { incidentType: l.incident_type } },
              h("strong", {}, typeLabel(l.incident_type)), ": ",
              h("span", { class: "lineage" }, l.label),
              l.lineage && !l.matches_version ? h("span", { class: "muted" }, ` (${t("library.changed_since")})`) : null,
            ),
          )
        : [h("li", { class: "empty" }, t("library.from_stock"))]),
    );
    const chosen = publishType.value;
    publishType.replaceChildren(
      ...found.map((l) => h("option", { value: l.incident_type, selected: l.incident_type === chosen }, typeLabel(l.incident_type))),
    );
    publishButton.disabled = found.length === 0;
  }

  async function loadVersions() {
    const params = new URLSearchParams();
    if (typeFilter.value) params.set("incident_type", typeFilter.value);
    if (networkFilter.value) params.set("network_id", networkFilter.value);
    const found = await api(`/library${params.size ? `?${params}` : ""}`);
    const types = new Set([...typeFilter.options].map((o) => o.value));
    for (const v of found) {
      if (!types.has(v.incident_type)) {
        typeFilter.append(h("option", { value: v.incident_type }, typeLabel(v.incident_type)));
        types.add(v.incident_type);
      }
    }
    versions.replaceChildren(
      ...(found.length
        ? found.map((v) =>
            h("li", { class: "version-item", dataset: { versionId: v.id } },
              h("h3", {}, v.label),
              v.parent ? h("p", { class: "fine" }, t("library.from", { label: v.parent.label })) : null,
              v.change_note ? h("p", {}, v.change_note) : null,
              h("p", { class: "fine track-record" }, recordLine(v.track_record)),
              h("div", { class: "actions" },
                showButton(t("library.diff"), () => showDiff(v, "parent")),
                showButton(t("library.vs_stock"), () => showDiff(v, "stock")),
                showButton(t("library.dry_run"), () => showDryRun(v)),
                v.city_id === me.city_id ? null : actionButton(t("library.adopt"), "adopt", v.id),
                v.city_id === me.city_id ? null : actionButton(t("library.fork"), "fork", v.id, "secondary"),
              ),
            ),
          )
        : [h("li", { class: "empty" }, t("library.none_published"))]),
    );
  }

  function showButton(label, show) {
    return h("button", { type: "button", class: "secondary small", onclick: () => show().catch((e) => notify(e.message)) }, label);
  }

  function actionButton(label, verb, versionId, kind = "primary") {
    const button = h("button", { type: "button", class: `${kind} small`, dataset: { verb } }, label);
    button.addEventListener("click", () =>
      busy(button, async () => {
        const taken = await api(`/cities/${me.city_id}/library/versions/${versionId}/${verb}`, { method: "POST" });
        notify(verb === "ignore" ? t("library.ignored") : t("library.yours", { label: taken.label }), "ok");
        await loadAll();
      }),
    );
    return button;
  }

  async function showDiff(version, against) {
    const diff = await api(`/library/versions/${version.id}/diff?against=${against}`);
    detail.replaceChildren(
      h("h2", { id: "detail-title" }, `${diff.from_label} → ${diff.to_label}`),
      h("pre", { class: "diff", id: "detail-diff" }, diff.diff || t("library.same_text")),
    );
  }

  async function showDryRun(version) {
    const run = await api(`/library/versions/${version.id}/dry-run`);
    detail.replaceChildren(
      h("h2", { id: "detail-title" }, t("library.dry_run_of", { label: version.label, city: city.name })),
      dryRunView(run),
    );
  }

  await loadAll();
  connect({
    scopes: () => [`city:${me.city_id}`],
    since: () => undefined,
    onEvent: () => {},
    onReset: () => {},
    onNotice: () => {},
  });
}
