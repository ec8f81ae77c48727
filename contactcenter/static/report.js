// The citizen web form: show the chosen service's own fields, "use my location", and a photo
// size check before the upload. The form works without it (every field is then shown).
"use strict";

(() => {
  const form = document.getElementById("report");
  if (!form) return;

  // only the chosen service's attribute fields are shown and sent
  const service = document.getElementById("service");
  const groups = form.querySelectorAll("fieldset.attributes");
  function showAttributes() {
    for (const fs of groups) {
      const on = fs.getAttribute("data-service") === service.value;
      fs.hidden = !on;
      fs.disabled = !on; // disabled fields are neither required nor submitted
    }
  }
  service.addEventListener("change", showAttributes);
  showAttributes();

  // "use my location": fills latitude and longitude (the page asks; nothing else is sent)
  const locate = document.getElementById("locate");
  const status = document.getElementById("locate-status");
  if (navigator.geolocation && locate) {
    locate.hidden = false;
    locate.addEventListener("click", () => {
      status.textContent = locate.getAttribute("data-locating");
      navigator.geolocation.getCurrentPosition((pos) => {
        document.getElementById("lat").value = pos.coords.latitude.toFixed(6);
        document.getElementById("long").value = pos.coords.longitude.toFixed(6);
        status.textContent = locate.getAttribute("data-located");
      }, () => {
        status.textContent = locate.getAttribute("data-failed");
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
  }

  // a photo over the limit is refused here, before a long upload on a phone connection
  const media = document.getElementById("media");
  const mediaStatus = document.getElementById("media-status");
  const maxBytes = parseInt(form.getAttribute("data-max-photo"), 10);
  media.addEventListener("change", () => {
    const file = media.files && media.files[0];
    if (file && file.size > maxBytes) {
      mediaStatus.textContent = form.getAttribute("data-too-big");
      media.value = "";
    } else {
      mediaStatus.textContent = "";
    }
  });

  // one click sends once
  form.addEventListener("submit", () => {
    document.getElementById("send").disabled = true;
  });
})();
