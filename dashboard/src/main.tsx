import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { Provider } from 'urql';
import { createGraphQLClient } from './api/client.ts';
import { App } from './app.tsx';
import './styles.css';

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <Provider value={createGraphQLClient()}>
      <App />
    </Provider>
  </StrictMode>,
);
