// The experiments API's shapes (routeiq/api/admin/experiments.py), from the generated schema.
import type { BodyOf, ResponseOf, Schemas } from "../../api/types";

export type Experiment = Schemas["ExperimentOut"];
export type ExperimentList = ResponseOf<"/admin/experiments", "get">;
export type ExperimentCreate = BodyOf<"/admin/experiments", "post">;
export type ExperimentChanged = Schemas["ExperimentChanged"];
export type ExperimentDetail = Schemas["ExperimentDetail"];
export type ExperimentPatch = Schemas["ExperimentPatch"];
export type PromoteResult = Schemas["PromoteResult"];
export type ArmRow = Schemas["ArmRow"];
export type Verdict = Schemas["VerdictOut"];
export type Interval = Schemas["IntervalOut"];
export type SeriesPoint = Schemas["routeiq__api__admin__experiments__SeriesPoint"];
export type MetricName = NonNullable<ExperimentCreate["primary"]>;
export type UnitKind = NonNullable<ExperimentCreate["unit"]>[number];
