import type { PortalState } from '../state';

/** What views may ask of the portal. */
export interface PortalApp {
  state: PortalState;
  /** Renders the current page again. */
  render(): void;
  navigate(page: string): void;
  /** Reads the log, anchors and chain again with the settings shown. */
  reload(): Promise<void>;
  verify(): Promise<void>;
}
