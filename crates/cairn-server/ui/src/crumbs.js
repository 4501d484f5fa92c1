// What the header's breadcrumbs know beyond the URL (a run's display name).
import { store } from './store.js';

export const crumbs = store({});
