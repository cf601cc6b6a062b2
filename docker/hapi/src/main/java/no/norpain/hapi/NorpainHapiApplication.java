package no.norpain.hapi;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.elasticsearch.ElasticsearchRestClientAutoConfiguration;
import org.springframework.boot.autoconfigure.orm.jpa.HibernateJpaAutoConfiguration;
import org.springframework.boot.autoconfigure.thymeleaf.ThymeleafAutoConfiguration;
import org.springframework.context.annotation.Import;

/**
 * A HAPI FHIR JPA server (R4, PostgreSQL) assembled from Maven Central artifacts, so that CI can run the
 * store contract suite against the real thing without a Docker engine. It reads the same
 * {@code hapi.fhir.*} and {@code spring.*} keys as the official hapiproject/hapi image, from
 * docker/hapi/application.yaml, so both run with one set of settings.
 *
 * <p>HAPI wires its own entity manager (with its Hibernate dialect and entity packages), so Spring Boot's
 * JPA auto-configuration is switched off; Elasticsearch (no full-text index) and Thymeleaf (no pages) too.
 */
@SpringBootApplication(
		exclude = {
			HibernateJpaAutoConfiguration.class,
			ElasticsearchRestClientAutoConfiguration.class,
			ThymeleafAutoConfiguration.class
		})
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	ThreadPoolFactoryConfig.class,
	// The in-process message broker that batch2 jobs (delete-expunge among them) run on; no subscriptions.
	SubscriptionChannelConfig.class
})
public class NorpainHapiApplication {

	public static void main(String[] args) {
		SpringApplication.run(NorpainHapiApplication.class, args);
	}
}
