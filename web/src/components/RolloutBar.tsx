/** The rollout state badge and a progress bar toward the channel's version. */
import { type RolloutSummary, STATE_LABEL } from "../rollout.ts";

export function RolloutState({ s }: { s: RolloutSummary }) {
  return (
    <span
      className={`badge badge-rollout-${s.state}`}
      data-testid="rollout-state"
      data-state={s.state}
    >
      {STATE_LABEL[s.state]}
    </span>
  );
}

export function RolloutBar({ s }: { s: RolloutSummary }) {
  return (
    <div className="progress-wrap">
      <div
        className="progress"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={s.percent}
        aria-label="hosts on the target version"
      >
        <div className={`progress-fill progress-${s.state}`} style={{ width: `${s.percent}%` }} />
      </div>
      <span
        className="progress-text"
        data-testid="rollout-progress"
        data-done={s.done}
        data-total={s.total}
      >
        {s.target ? (
          <>
            {s.done} / {s.total} on <strong>{s.target}</strong> ({s.percent}%)
          </>
        ) : (
          "channel has no package"
        )}
        {s.inProgress > 0 && <> · {s.inProgress} updating</>}
        {s.errors > 0 && (
          <>
            {" "}
            · <span className="text-error">{s.errors} failed</span>
          </>
        )}
      </span>
    </div>
  );
}
