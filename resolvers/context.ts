// What every resolver receives: the caller's verified identity and the request's services and loaders.
import type DataLoader from 'dataloader';
import type { Identity } from '../auth/identity.ts';
import type { VDITemplate } from '../operator/v1alpha1.ts';
import type { SessionEventModel } from '../src/sessions/models.ts';
import type { ApiServices } from '../src/sessions/services.ts';

export interface Context {
  identity: Identity;
  services: ApiServices;
  loaders: {
    template: DataLoader<string, VDITemplate | undefined>;
  };
  /**
   * For a subscription over WebSocket: sends an event's result to the subscriber at once if it can (see
   * SubscriptionScope.direct). Absent elsewhere.
   */
  direct?: (event: SessionEventModel) => boolean;
}
