import { PageHeader, Card } from "../components/common";

export function Experiments() {
  return (
    <>
      <PageHeader title="Experiments" />
      <Card>
        <p>Coming with experiments: A/B tests between routing strategies, their arms, traffic split and results
          will be managed here.</p>
        <p className="muted">Each routing decision already carries <code>experiment</code> and <code>arm</code> fields
          (see Decisions), ready for this page.</p>
      </Card>
    </>
  );
}
