// GOV.UK Frontend's components, started from this external module (issue #19 §4): the Content-Security-Policy allows
// no inline script, so the class GOV.UK's template sets inline is set here, by the one script that needs it. Only a
// browser that runs modules runs this file, which is the test GOV.UK's inline snippet makes.
import { initAll } from "/static/vendor/govuk-frontend/govuk-frontend.min.js";

document.body.classList.add("govuk-frontend-supported");
initAll();
