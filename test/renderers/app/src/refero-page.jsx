// The portal's renderer (helsenorge Refero) on a page of its own. The test hands it a Questionnaire
// through window.norpainRender and reads back what Refero passes to onSubmit (window.norpainResponse),
// exactly what the portal would forward to the registry.
import { configureStore } from '@reduxjs/toolkit';
import { Refero, rootReducer } from '@helsenorge/refero';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { Provider } from 'react-redux';
// The design system's global styles and Refero's own CSS are not package exports: import them by path.
import '../node_modules/@helsenorge/designsystem-react/scss/helsenorge.scss';
import '../node_modules/@helsenorge/refero/index.css';
import { resources } from './resources.mjs';

function render(questionnaire) {
  const store = configureStore({ reducer: rootReducer });
  window.norpainResponse = undefined;
  window.norpainChanges = 0;
  createRoot(document.getElementById('root')).render(
    <StrictMode>
      <Provider store={store}>
        <main className="page_refero">
          <Refero
            questionnaire={questionnaire}
            authorized
            resources={resources}
            language="nb-NO"
            loginButton={<button type="button">Logg inn</button>}
            onCancel={() => {}}
            onSave={() => {}}
            onChange={() => {
              window.norpainChanges += 1;
            }}
            onSubmit={(response) => {
              window.norpainResponse = response;
            }}
          />
        </main>
      </Provider>
    </StrictMode>,
  );
}

window.norpainRender = render;
window.norpainReady = true;
