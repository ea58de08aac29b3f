// The create form: a group, 2+ arms (strategy, weight, shadow, optional profile), the unit order,
// the primary metric, guardrails and the design. A 400's `param` puts its message at that field.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { ApiError, post } from "../../api/client";
import type { GatewayStatus, StrategyResponse } from "../../api/types";
import { Card, message } from "../../components/common";
import { METRIC_NAMES, METRICS } from "./format";
import type { Experiment, ExperimentChanged, ExperimentCreate, MetricName, UnitKind } from "./types";

interface ArmDraft {
  name: string;
  strategy: string;
  weight: string;
  shadow: boolean;
  profile: string;
}

interface GuardrailDraft {
  on: boolean;
  margin: string;
}

const UNIT_HELP: Record<UnitKind, string> = {
  team: "the key's team",
  user: "the key's or request's user",
  session: "x-routeiq-session-id, metadata.session_id or the user field",
  request: "each request on its own",
};

/** "arms[1].strategy" (our validation) and "arms.1.strategy" (the schema's) name the same field. */
function normalized(param: string): string {
  return param.replace(/\[(\d+)\]/g, ".$1");
}

export function CreateExperiment({ status, strategies, onCreated, onCancel }: {
  status: GatewayStatus; strategies: StrategyResponse; onCreated: (experiment: Experiment) => void; onCancel: () => void;
}) {
  const names = strategies.available.map((spec) => spec.name);
  const inForce = (group: string) => strategies.active.groups[group] ?? strategies.active.default;
  const [group, setGroup] = useState(status.groups[0] ?? "");
  const [name, setName] = useState("");
  const [arms, setArms] = useState<ArmDraft[]>(() => {
    const current = inForce(status.groups[0] ?? "");
    const other = names.find((strategy) => strategy !== current) ?? current;
    return [
      { name: "control", strategy: current, weight: "1", shadow: false, profile: "" },
      { name: "challenger", strategy: other, weight: "1", shadow: false, profile: "" },
    ];
  });
  const [control, setControl] = useState("");
  const [units, setUnits] = useState<{ kind: UnitKind; on: boolean }[]>(
    (["team", "user", "session", "request"] as UnitKind[]).map((kind) => ({ kind, on: true })),
  );
  const [primary, setPrimary] = useState<MetricName>("feedback_score");
  const [guardrails, setGuardrails] = useState<Record<MetricName, GuardrailDraft>>(() =>
    Object.fromEntries(METRIC_NAMES.map((metric) => [metric, { on: metric === "error_rate", margin: "0" }])) as Record<MetricName, GuardrailDraft>,
  );
  const [effect, setEffect] = useState("5");
  const [alpha, setAlpha] = useState("0.05");
  const [minSamples, setMinSamples] = useState("100");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [general, setGeneral] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);

  // Once a server error is shown, the field it names takes the focus.
  useEffect(() => {
    if (Object.keys(errors).length) form.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
  }, [errors]);

  const changeArm = (index: number, patch: Partial<ArmDraft>) =>
    setArms(arms.map((arm, at) => (at === index ? { ...arm, ...patch } : arm)));
  const moveUnit = (index: number, by: -1 | 1) => {
    const next = [...units];
    [next[index], next[index + by]] = [next[index + by], next[index]];
    setUnits(next);
  };
  const chosenGuardrails = METRIC_NAMES.filter((metric) => guardrails[metric].on);

  // Every field that can carry a server error: a param is shown at the nearest of these.
  const known = new Set([
    "name", "group", "arms", "control", "unit", "primary", "guardrails", "alpha", "effect_size", "min_samples_per_arm",
    ...arms.flatMap((_, index) => [`arms.${index}`, `arms.${index}.name`, `arms.${index}.strategy`, `arms.${index}.weight`, `arms.${index}.params`]),
    ...METRIC_NAMES.map((metric) => `guardrail.${metric}`),
  ]);
  const fieldOf = (param: string): string | null => {
    let key = normalized(param);
    const guardrail = /^guardrails\.(\d+)/.exec(key);
    if (guardrail) key = `guardrail.${chosenGuardrails[Number(guardrail[1])] ?? ""}`;
    while (key && !known.has(key)) key = key.includes(".") ? key.slice(0, key.lastIndexOf(".")) : "";
    return key || null;
  };
  const field = (key: string) => ({
    "aria-invalid": errors[key] ? true : undefined,
    "aria-describedby": errors[key] ? `exp-error-${key}` : undefined,
  });
  const fieldError = (at: string) =>
    errors[at] ? <span className="field-error" id={`exp-error-${at}`} role="alert">{errors[at]}</span> : null;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setErrors({});
    setGeneral(null);
    const body: ExperimentCreate = {
      group,
      name: name.trim(),
      arms: arms.map((arm) => ({
        name: arm.name.trim(),
        strategy: arm.strategy,
        weight: Number(arm.weight),
        shadow: arm.shadow,
        params: arm.profile.trim() ? { profile: arm.profile.trim() } : {},
      })),
      control: control || null,
      unit: units.filter((unit) => unit.on).map((unit) => unit.kind),
      primary,
      guardrails: chosenGuardrails.map((metric) => ({ metric, margin: Number(guardrails[metric].margin) || 0 })),
      effect_size: Number(effect) / 100,
      alpha: Number(alpha),
      min_samples_per_arm: Number(minSamples),
    };
    setBusy(true);
    try {
      const answer = await post<ExperimentChanged>("/admin/experiments", body);
      onCreated(answer.experiment);
    } catch (reason) {
      const at = reason instanceof ApiError && reason.param ? fieldOf(reason.param) : null;
      if (at) {
        setErrors({ [at]: reason instanceof ApiError ? reason.message : message(reason) });
      } else {
        setGeneral(message(reason));
      }
    } finally {
      setBusy(false);
    }
  };

  const live = arms.filter((arm) => !arm.shadow && arm.name.trim());
  return (
    <Card title="New experiment">
      <form ref={form} onSubmit={submit} data-testid="create-experiment" noValidate
        onChange={() => { if (Object.keys(errors).length) setErrors({}); }}>
        <div className="form-grid exp-top">
          <div className="field">
            <label htmlFor="exp-name">Experiment name</label>
            <input id="exp-name" type="text" value={name} maxLength={200} placeholder="centroid vs cheapest"
              onChange={(event) => setName(event.target.value)} {...field("name")} />
            {fieldError("name")}
          </div>
          <div className="field">
            <label htmlFor="exp-group">Group</label>
            <select id="exp-group" value={group} onChange={(event) => setGroup(event.target.value)} {...field("group")}>
              {status.groups.map((name) => <option key={name} value={name}>{name}</option>)}
            </select>
            <span className="muted small">now routed by {inForce(group)}</span>
            {fieldError("group")}
          </div>
          <div className="field">
            <label htmlFor="exp-primary">Primary metric</label>
            <select id="exp-primary" value={primary} onChange={(event) => setPrimary(event.target.value as MetricName)} {...field("primary")}>
              {METRIC_NAMES.map((metric) => <option key={metric} value={metric}>{METRICS[metric].label}</option>)}
            </select>
            <span className="muted small">decides the winner ({METRICS[primary].higherIsBetter ? "higher" : "lower"} is better)</span>
            {fieldError("primary")}
          </div>
          <div className="field">
            <label htmlFor="exp-control">Control arm</label>
            <select id="exp-control" value={control} onChange={(event) => setControl(event.target.value)} {...field("control")}>
              <option value="">{live[0]?.name || "—"} (the first live arm)</option>
              {live.map((arm) => <option key={arm.name} value={arm.name}>{arm.name}</option>)}
            </select>
            {fieldError("control")}
          </div>
        </div>

        <fieldset className="exp-fieldset" style={{ marginTop: "0.8rem" }} aria-describedby={errors.arms ? "exp-error-arms" : undefined}>
          <legend>Arms</legend>
          <p className="muted small" style={{ margin: 0 }}>Live arms split the group's units by weight; a shadow arm decides every
            request of the experiment and records it, but never serves.</p>
          {fieldError("arms")}
          <div className="exp-arms">
            {arms.map((arm, index) => (
              <div className="exp-arm" key={index} data-testid={`arm-${index}`}>
                <div className="field">
                  <label htmlFor={`exp-arm-${index}-name`}><span className="visually-hidden">Arm {index + 1} </span>Name</label>
                  <input id={`exp-arm-${index}-name`} type="text" value={arm.name} maxLength={64}
                    onChange={(event) => changeArm(index, { name: event.target.value })} {...field(`arms.${index}.name`)} />
                  {fieldError(`arms.${index}.name`)}
                  {fieldError(`arms.${index}`)}
                </div>
                <div className="field">
                  <label htmlFor={`exp-arm-${index}-strategy`}><span className="visually-hidden">Arm {index + 1} </span>Strategy</label>
                  <select id={`exp-arm-${index}-strategy`} value={arm.strategy}
                    onChange={(event) => changeArm(index, { strategy: event.target.value })} {...field(`arms.${index}.strategy`)}>
                    {names.map((strategy) => <option key={strategy} value={strategy}>{strategy}</option>)}
                  </select>
                  {fieldError(`arms.${index}.strategy`)}
                </div>
                <div className="field">
                  <label htmlFor={`exp-arm-${index}-weight`}><span className="visually-hidden">Arm {index + 1} </span>Weight</label>
                  <input id={`exp-arm-${index}-weight`} type="number" min={0} step="any" value={arm.weight} disabled={arm.shadow}
                    onChange={(event) => changeArm(index, { weight: event.target.value })} {...field(`arms.${index}.weight`)} />
                  {fieldError(`arms.${index}.weight`)}
                </div>
                <div className="field">
                  <label htmlFor={`exp-arm-${index}-profile`}><span className="visually-hidden">Arm {index + 1} </span>Profile (optional)</label>
                  <input id={`exp-arm-${index}-profile`} type="text" value={arm.profile} placeholder="eco"
                    onChange={(event) => changeArm(index, { profile: event.target.value })} {...field(`arms.${index}.params`)} />
                  {fieldError(`arms.${index}.params`)}
                </div>
                <label className="check">
                  <input type="checkbox" checked={arm.shadow}
                    onChange={(event) => changeArm(index, { shadow: event.target.checked, weight: event.target.checked ? "0" : "1" })} />
                  Shadow
                </label>
                <button type="button" disabled={arms.length <= 2} aria-label={`Remove arm ${index + 1}`}
                  onClick={() => setArms(arms.filter((_, at) => at !== index))}>Remove</button>
              </div>
            ))}
          </div>
          <button type="button" onClick={() => setArms([...arms, {
            name: `arm-${arms.length + 1}`, strategy: names[0] ?? "", weight: "1", shadow: false, profile: "",
          }])}>Add an arm</button>
        </fieldset>

        <div className="grid-2" style={{ marginTop: "0.8rem", gap: "0.8rem" }}>
          <fieldset className="exp-fieldset" aria-describedby={errors.unit ? "exp-error-unit" : undefined}>
            <legend>Unit (the first present decides the arm)</legend>
            <ol className="exp-units">
              {units.map((unit, index) => (
                <li key={unit.kind}>
                  <span className="exp-rank">{index + 1}.</span>
                  <label className="check">
                    <input type="checkbox" checked={unit.on}
                      onChange={(event) => setUnits(units.map((at) => (at.kind === unit.kind ? { ...at, on: event.target.checked } : at)))} />
                    {unit.kind}
                  </label>
                  <span className="muted small">{UNIT_HELP[unit.kind]}</span>
                  <span style={{ marginLeft: "auto", display: "flex", gap: "0.25rem" }}>
                    <button type="button" disabled={index === 0} onClick={() => moveUnit(index, -1)} aria-label={`Move ${unit.kind} up`}>↑</button>
                    <button type="button" disabled={index === units.length - 1} onClick={() => moveUnit(index, 1)} aria-label={`Move ${unit.kind} down`}>↓</button>
                  </span>
                </li>
              ))}
            </ol>
            {fieldError("unit")}
          </fieldset>

          <fieldset className="exp-fieldset" aria-describedby={errors.guardrails ? "exp-error-guardrails" : undefined}>
            <legend>Guardrails (stop when an arm is clearly worse than the control)</legend>
            <div className="exp-guardrails">
              {METRIC_NAMES.map((metric) => (
                <div className="toolbar" key={metric}>
                  <label className="check">
                    <input type="checkbox" checked={guardrails[metric].on}
                      onChange={(event) => setGuardrails({ ...guardrails, [metric]: { ...guardrails[metric], on: event.target.checked } })} />
                    {METRICS[metric].label}
                  </label>
                  {guardrails[metric].on ? (<>
                    <label htmlFor={`exp-guard-${metric}`} className="small">margin</label>
                    <input id={`exp-guard-${metric}`} type="number" min={0} step="any" style={{ width: "6rem" }} value={guardrails[metric].margin}
                      onChange={(event) => setGuardrails({ ...guardrails, [metric]: { ...guardrails[metric], margin: event.target.value } })}
                      {...field(`guardrail.${metric}`)} />
                  </>) : null}
                  {fieldError(`guardrail.${metric}`)}
                </div>
              ))}
            </div>
            {fieldError("guardrails")}
          </fieldset>
        </div>

        <div className="form-grid" style={{ marginTop: "0.8rem" }}>
          <div className="field">
            <label htmlFor="exp-effect">Effect worth detecting (%)</label>
            <input id="exp-effect" type="number" min={0} step="any" value={effect} onChange={(event) => setEffect(event.target.value)} {...field("effect_size")} />
            {fieldError("effect_size")}
          </div>
          <div className="field">
            <label htmlFor="exp-alpha">Alpha</label>
            <input id="exp-alpha" type="number" min={0} max={1} step="any" value={alpha} onChange={(event) => setAlpha(event.target.value)} {...field("alpha")} />
            {fieldError("alpha")}
          </div>
          <div className="field">
            <label htmlFor="exp-min-samples">Minimum sample per arm</label>
            <input id="exp-min-samples" type="number" min={1} step={1} value={minSamples} onChange={(event) => setMinSamples(event.target.value)} {...field("min_samples_per_arm")} />
            {fieldError("min_samples_per_arm")}
          </div>
        </div>
        {general ? <div className="error" role="alert" style={{ marginTop: "0.8rem" }}>{general}</div> : null}
        <div className="buttons" style={{ marginTop: "0.8rem" }}>
          <button type="submit" className="primary" disabled={busy}>Start experiment</button>
          <button type="button" onClick={onCancel}>Cancel</button>
        </div>
      </form>
    </Card>
  );
}
