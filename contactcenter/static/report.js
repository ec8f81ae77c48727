// The citizen web form: show the chosen service's own fields, "use my location", and a photo
// size check before the upload. The form works without it (every field is then shown).
(function () {
  "use strict";
  var form = document.getElementById("report");
  if (!form) { return; }

  // only the chosen service's attribute fields are shown and sent
  var service = document.getElementById("service");
  var groups = form.querySelectorAll("fieldset.attributes");
  function showAttributes() {
    groups.forEach(function (fs) {
      var on = fs.getAttribute("data-service") === service.value;
      fs.hidden = !on;
      fs.disabled = !on; // disabled fields are neither required nor submitted
    });
  }
  service.addEventListener("change", showAttributes);
  showAttributes();

  // "use my location": fills latitude and longitude (the page asks; nothing else is sent)
  var locate = document.getElementById("locate");
  var status = document.getElementById("locate-status");
  if (navigator.geolocation && locate) {
    locate.hidden = false;
    locate.addEventListener("click", function () {
      status.textContent = locate.getAttribute("data-locating");
      navigator.geolocation.getCurrentPosition(function (pos) {
        document.getElementById("lat").value = pos.coords.latitude.toFixed(6);
        document.getElementById("long").value = pos.coords.longitude.toFixed(6);
        status.textContent = locate.getAttribute("data-located");
      }, function () {
        status.textContent = locate.getAttribute("data-failed");
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
  }

  // a photo over the limit is refused here, before a long upload on a phone connection
  var media = document.getElementById("media");
  var mediaStatus = document.getElementById("media-status");
  var maxBytes = parseInt(form.getAttribute("data-max-photo"), 10);
  media.addEventListener("change", function () {
    var file = media.files && media.files[0];
    if (file && file.size > maxBytes) {
      mediaStatus.textContent = form.getAttribute("data-too-big");
      media.value = "";
    } else {
      mediaStatus.textContent = "";
    }
  });

  // one click sends once
  form.addEventListener("submit", function () {
    document.getElementById("send").disabled = true;
  });
})();
