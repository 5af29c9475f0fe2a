/** The version timeline the server computes (GET /api/apps/:app/groups/:group/timeline). */
export interface Timeline {
  versions: string[];
  points: { t: number; counts: Record<string, number> }[];
}
