import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseAppIdPath, resolveAppId } from "../handler/jobs/app-id.js";

const resolve = (pod: unknown, spec: string) => resolveAppId(pod, parseAppIdPath(spec));
const pod = {
  metadata: { labels: { "app-id": "thumbnailer", "0": "zero" } },
  spec: {
    containers: [
      {
        env: [
          { name: "JOBID", value: "resize-images" },
          { name: "EMPTY", value: "" },
          { name: "FROM_SECRET", valueFrom: { secretKeyRef: { name: "s", key: "k" } } },
          { name: "NUMBER", value: 7 },
        ],
      },
    ],
  },
};

describe("OPTUNE_APP_ID path syntax", () => {
  test("the default path takes the JOBID env var of the first container", () => {
    assert.equal(resolve(pod, "spec/containers/0/env/[JOBID]"), "resize-images");
  });

  test("an env var named twice: the last value, the one the container sees", () => {
    const twice = { spec: { containers: [{ env: [{ name: "JOBID", value: "first" }, { name: "JOBID", value: "last" }] }] } };
    assert.equal(resolve(twice, "spec/containers/0/env/[JOBID]"), "last");
    const fromSecret = { spec: { containers: [{ env: [{ name: "JOBID", value: "first" }, { name: "JOBID", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }] }] } };
    assert.equal(resolve(fromSecret, "spec/containers/0/env/[JOBID]"), undefined, "the container sees the Secret's value, which the pod does not show");
  });

  test("a plain element is a map key; a number indexes an array", () => {
    assert.equal(resolve(pod, "metadata/labels/app-id"), "thumbnailer");
  });

  test("a number is a key when the current value is a map", () => {
    assert.equal(resolve(pod, "metadata/labels/0"), "zero");
  });

  test("[key,kfield,vfield] picks by another field and takes another field", () => {
    const custom = { items: [{ k: "a", v: "first" }, { k: "b", v: "second" }] };
    assert.equal(resolve(custom, "items/[b,k,v]"), "second");
  });

  test("empty elements are skipped, as leading, trailing and double slashes", () => {
    assert.equal(resolve(pod, "/spec//containers/0/env/[JOBID]/"), "resize-images");
  });

  for (const [spec, why] of [
    ["spec/containers/1/env/[JOBID]", "index past the end"],
    ["spec/containers/x/env/[JOBID]", "a word used on an array"],
    ["spec/containers/0/env/[MISSING]", "no such env var"],
    ["spec/containers/0/env/[EMPTY]", "an empty string"],
    ["spec/containers/0/env/[FROM_SECRET]", "an env var without value"],
    ["spec/containers/0/env/[NUMBER]", "a value that is not a string"],
    ["metadata/labels/[app-id]", "[key] on a map"],
    ["spec/containers/0/env/0/name/more", "descending into a string"],
    ["metadata/toString", "an inherited property, not a key"],
  ] as const) {
    test(`no app id (never an error) for ${why}`, () => {
      assert.equal(resolve(pod, spec), undefined);
    });
  }

  test("no app id for a pod that is not an object", () => {
    assert.equal(resolve(null, "spec/containers/0/env/[JOBID]"), undefined);
    assert.equal(resolve("pod", "spec"), undefined);
  });

  test("parses [key] with the env field names, and [key,kfield,vfield]", () => {
    assert.deepEqual(parseAppIdPath("env/[JOBID]"), [
      { kind: "field", name: "env" },
      { kind: "pick", key: "JOBID", keyField: "name", valueField: "value" },
    ]);
    assert.deepEqual(parseAppIdPath("[a,b,c]"), [{ kind: "pick", key: "a", keyField: "b", valueField: "c" }]);
  });

  for (const [spec, message] of [
    ["", /no path elements/],
    ["///", /no path elements/],
    ["env/[JOBID", /unbalanced bracket in "\[JOBID"/],
    ["env/JOBID]", /unbalanced bracket/],
    ["env/[a,b]", /must be \[key\] or \[key,keyField,valueField\]/],
    ["env/[]", /empty name/],
    ["env/[a,,c]", /empty name/],
  ] as const) {
    test(`rejects ${JSON.stringify(spec)} with a reason`, () => {
      assert.throws(() => parseAppIdPath(spec), message);
    });
  }
});

describe("a service mesh's proxy injected before the job's container", () => {
  const meshed = (mesh: "linkerd-proxy" | "istio-proxy", where: "containers" | "initContainers") => {
    const proxy = { name: mesh, env: [{ name: "JOBID", value: "proxy" }] };
    const job = { name: "worker", env: [{ name: "JOBID", value: "resize-images" }] };
    return where === "containers"
      ? { spec: { containers: [proxy, job] } }
      : { spec: { initContainers: [{ name: "setup", env: [{ name: "JOBID", value: "setup" }] }, { ...proxy, restartPolicy: "Always" }], containers: [job] } };
  };

  for (const mesh of ["linkerd-proxy", "istio-proxy"] as const) {
    test(`${mesh} as containers[0]: spec/containers/0 is still the container the pod's author wrote first`, () => {
      assert.equal(resolve(meshed(mesh, "containers"), "spec/containers/0/env/[JOBID]"), "resize-images");
    });

    test(`${mesh} as a native sidecar: the init containers are counted without it, the containers as written`, () => {
      assert.equal(resolve(meshed(mesh, "initContainers"), "spec/containers/0/env/[JOBID]"), "resize-images");
      assert.equal(resolve(meshed(mesh, "initContainers"), "spec/initContainers/0/env/[JOBID]"), "setup");
      assert.equal(resolve(meshed(mesh, "initContainers"), "spec/initContainers/1/env/[JOBID]"), undefined);
    });
  }

  test("a container of another name in the first place is counted", () => {
    assert.equal(resolve({ spec: { containers: [{ name: "proxy", env: [{ name: "JOBID", value: "mine" }] }] } }, "spec/containers/0/env/[JOBID]"), "mine");
  });

  test("only the pod's own container lists are counted so: containers elsewhere are indexed as they are", () => {
    const elsewhere = { metadata: { annotations: {} }, status: { containers: [{ name: "linkerd-proxy", id: "a" }, { name: "worker", id: "b" }] } };
    assert.equal(resolve(elsewhere, "status/containers/0/id"), "a");
  });
});
