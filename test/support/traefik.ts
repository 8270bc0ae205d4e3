// The routing tests use the same Traefik runner as the local default (dev/traefik.ts).
export * from '../../dev/traefik.ts';
