/** The whole activity log across applications. */
import { ActivityFeed } from "../components/ActivityFeed.tsx";

export function ActivityPage() {
  return (
    <>
      <h1>Activity</h1>
      <ActivityFeed limit={100} />
    </>
  );
}
