// Every GraphQL operation of the dashboard; GraphQL Code Generator's client preset types them from schema/.
import { graphql } from '../__generated__/gql.ts';

export const SessionFields = graphql(`
  fragment SessionFields on VDISession {
    id
    name
    namespace
    user
    createdAt
    spec {
      template
      timeout
      suspend
      resources {
        gpu
        memory
        cpu
      }
      persistence {
        enabled
        size
      }
    }
    status {
      phase
      reason
      message
      nodeName
      url
      startTime
      expiresAt
      stoppedAt
      presence {
        connected
        idleSince
        stopAt
        stopReason
        warning
      }
      conditions {
        type
        status
        reason
        message
        lastTransitionTime
      }
    }
    template {
      name
      displayName
      defaultTimeout
      maxTimeout
      resources {
        defaultGPU
        defaultMemory
        defaultCPU
      }
    }
  }
`);

export const MeQuery = graphql(`
  query Me {
    me {
      name
      username
      isAdmin
      quota {
        sessions {
          used
          limit
        }
        gpus {
          used
          limit
        }
      }
    }
  }
`);

export const TemplatesQuery = graphql(`
  query Templates {
    templates {
      name
      displayName
      description
      applications {
        name
        icon
      }
      resources {
        defaultGPU
        maxGPU
        defaultMemory
        maxMemory
        defaultCPU
        maxCPU
      }
      defaultTimeout
      maxTimeout
      persistence {
        defaultEnabled
        defaultSize
        maxSize
      }
    }
  }
`);

export const CapacityQuery = graphql(`
  query Capacity {
    capacity {
      totalSlices
      usedSlices
      freeSlices
      nodes {
        name
        product
        ready
        slicesTotal
        slicesUsed
        slicesFree
      }
    }
  }
`);

export const SessionsQuery = graphql(`
  query Sessions($allUsers: Boolean) {
    sessions(allUsers: $allUsers) {
      ...SessionFields
    }
  }
`);

export const SessionEventsSubscription = graphql(`
  subscription SessionEvents($allUsers: Boolean) {
    sessionEvents(allUsers: $allUsers) {
      type
      session {
        ...SessionFields
      }
    }
  }
`);

export const CreateSessionMutation = graphql(`
  mutation CreateSession($input: CreateVDISessionInput!) {
    createVDISession(input: $input) {
      ...SessionFields
    }
  }
`);

export const TerminateSessionMutation = graphql(`
  mutation TerminateSession($name: String!, $user: String) {
    terminateVDISession(name: $name, user: $user) {
      id
      status {
        phase
      }
    }
  }
`);

export const ExtendSessionMutation = graphql(`
  mutation ExtendSession($name: String!, $user: String) {
    extendVDISession(name: $name, user: $user) {
      ...SessionFields
    }
  }
`);

export const ResumeSessionMutation = graphql(`
  mutation ResumeSession($name: String!, $user: String) {
    resumeVDISession(name: $name, user: $user) {
      ...SessionFields
    }
  }
`);

export const IdleReclaimQuery = graphql(`
  query IdleReclaim {
    idleReclaim {
      idleSessions
      warnedSessions
      stoppedSessions {
        reason
        count
      }
      slicesReclaimed
      gpuHoursSaved
    }
  }
`);
