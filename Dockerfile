# One image for the three processes (migrate, api, worker); compose picks the command.
# Node.js 26 is the Active LTS line (LTS since 2026-10-28; Node.js 20 reached end of life on 2026-04-30).
# Debian 13 (trixie): the default base of node:26; Debian 12 (bookworm) left regular support on 2026-06-10.
FROM node:26-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY prisma ./prisma
RUN npm ci
COPY . .
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:26-trixie-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/prisma ./prisma
USER node
EXPOSE 3000 3001
# node itself, never `npm run`: npm does not pass SIGTERM on to node, so a stop would skip the
# graceful shutdown. The same entry file as `npm run start:api`; compose runs the worker and
# migrate with their own commands.
CMD ["node", "dist/apps/api/apps/api/src/main.js"]
