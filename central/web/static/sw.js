// Push service worker: show the alert, open the inbox on tap.
"use strict";
self.addEventListener("push", (event) => {
  const data = event.data ? event.data.json() : { title: "预警 Alert", body: "", url: "/inbox" };
  event.waitUntil(self.registration.showNotification(data.title, { body: data.body, data: { url: data.url }, tag: data.alert && data.alert.id }));
});
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(clients.openWindow(event.notification.data.url || "/inbox"));
});
