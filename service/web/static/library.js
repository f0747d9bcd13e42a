// The playbook library: versions of playbooks published by the cities of your networks,
// each with its track record; diffs against its parent, the stock playbook or another
// city's; a dry run of declaring it here and now; adopt or fork it; publish your own;
// and notices of newer versions of what you adopted, to pull in or ignore.

import { h } from "./dom.js";
import { fetchAll } from "./api.js";
import { typeLabel } from "./format.js";
import { busy, notify } from "./notices.js";
import { dryRunView } from "./dryrun.js";
import { startPage } from "./shell.js";

startPage({
  hint: "Sign in with your city's manager token to browse, adopt and publish playbooks.",
  start: startLibrary,
});

/** "12 min", "1.5 h": a duration in seconds, or a dash when there is none. */
function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 120) return `${Math.round(value)} s`;
  if (value < 7_200) return `${Math.round(value / 60)} min`;
  return `${(value / 3_600).toFixed(1)} h`;
}

function recordLine(record) {
  if (!record.incident_count) return "Not declared yet (exercises apart).";
  const rate = record.fill_rate === null ? "–" : `${Math.round(record.fill_rate * 100)}%`;
  return [
    `${record.incident_count} incident(s), ${record.request_count} requests`,
    `first claim p50 ${seconds(record.first_claim_p50_s)} / p90 ${seconds(record.first_claim_p90_s)}`,
    `fill p50 ${seconds(record.fill_p50_s)} / p90 ${seconds(record.fill_p90_s)}`,
    `fill rate ${rate}`,
    `${record.expired_unfilled_count} expired unfilled`,
    `${record.escalation_count} escalations`,
  ].join(" · ");
}

async function startLibrary({ api, me, city, main, connect }) {
  const typeFilter = h("select", { id: "library-type", onchange: () => loadVersions() },
    h("option", { value: "" }, "Every incident type"));
  const networkFilter = h("select", { id: "library-network", onchange: () => loadVersions() },
    h("option", { value: "" }, "Every network"));
  const refresh = h("button", { type: "button", class: "secondary small", id: "library-refresh", onclick: () => loadAll() }, "Refresh");
  const notices = h("ul", { class: "incident-list", id: "library-notices" });
  const lineage = h("ul", { class: "incident-list", id: "library-lineage" });
  const versions = h("ul", { class: "incident-list", id: "library-versions" });
  const detail = h("div", { id: "library-detail", "aria-live": "polite" });
  const publishType = h("select", { id: "publish-type", name: "incident_type" });
  const publishNote = h("input", { id: "publish-note", name: "change_note", maxlength: 2000, autocomplete: "off" });
  const publishButton = h("button", { type: "submit", class: "primary" }, "Publish");
  const publishForm = h("form", { class: "stack", id: "publish-form" },
    h("label", { class: "field" }, "Your playbook", publishType),
    h("label", { class: "field" }, "What changed", publishNote),
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
      notify(`Published ${version.label}.`, "ok");
      publishNote.value = "";
      await loadAll();
    });
  });

  main.append(
    h("div", { class: "console manage" },
      h("section", { class: "panel col-incidents", "aria-labelledby": "library-title" },
        h("h1", { id: "library-title" }, "Playbook library"),
        h("div", { class: "row" }, typeFilter, networkFilter, refresh),
        h("h2", {}, "Newer versions of what you adopted"),
        notices,
        h("h2", {}, `${city.name}’s playbooks`),
        lineage,
        h("details", { class: "declare", id: "publish" },
          h("summary", {}, "Publish one of your playbooks"),
          publishForm,
        ),
        h("h2", {}, "Published versions"),
        versions,
      ),
      h("section", { class: "panel col-main", "aria-label": "Selected version" }, detail),
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
              h("p", {}, `${n.newer.label} is out; you adopted ${n.current.label}.`),
              h("pre", { class: "diff" }, n.diff || "(no change to the text)"),
              h("div", { class: "actions" },
                actionButton("Pull in", "adopt", n.newer.version_id),
                actionButton("Ignore", "ignore", n.newer.version_id, "secondary"),
              ),
            ),
          )
        : [h("li", { class: "empty" }, "Nothing new.")]),
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
              l.lineage && !l.matches_version ? h("span", { class: "muted" }, " (changed since)") : null,
            ),
          )
        : [h("li", { class: "empty" }, "Your city declares from the stock playbooks.")]),
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
              v.parent ? h("p", { class: "fine" }, `from ${v.parent.label}`) : null,
              v.change_note ? h("p", {}, v.change_note) : null,
              h("p", { class: "fine track-record" }, recordLine(v.track_record)),
              h("div", { class: "actions" },
                showButton("Diff", () => showDiff(v, "parent")),
                showButton("vs stock", () => showDiff(v, "stock")),
                showButton("Dry run", () => showDryRun(v)),
                v.city_id === me.city_id ? null : actionButton("Adopt", "adopt", v.id),
                v.city_id === me.city_id ? null : actionButton("Fork", "fork", v.id, "secondary"),
              ),
            ),
          )
        : [h("li", { class: "empty" }, "No playbook published in your networks yet.")]),
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
        notify(verb === "ignore" ? "Ignored; you keep the version you adopted." : `Your playbook: ${taken.label}.`, "ok");
        await loadAll();
      }),
    );
    return button;
  }

  async function showDiff(version, against) {
    const diff = await api(`/library/versions/${version.id}/diff?against=${against}`);
    detail.replaceChildren(
      h("h2", { id: "detail-title" }, `${diff.from_label} → ${diff.to_label}`),
      h("pre", { class: "diff", id: "detail-diff" }, diff.diff || "(the same text)"),
    );
  }

  async function showDryRun(version) {
    const run = await api(`/library/versions/${version.id}/dry-run`);
    detail.replaceChildren(
      h("h2", { id: "detail-title" }, `Dry run of ${version.label} in ${city.name}, now`),
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
